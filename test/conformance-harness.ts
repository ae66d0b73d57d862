// Runs the official conformance suite against an upstream directly and through Sluice and
// compares the results check by check.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const CONFORMANCE = require.resolve('@modelcontextprotocol/conformance/dist/index.js');

export type CheckResults = Map<string, string>;

/** `selection`: a requirement set (e.g. 2025-11-25) or `scenario:<name>` for one scenario. */
export async function runConformance(url: string, selection: string): Promise<{ checks: CheckResults; output: string }> {
  const out = mkdtempSync(join(tmpdir(), 'conformance-'));
  const select = selection.startsWith('scenario:') ? ['--scenario', selection.slice('scenario:'.length)] : ['--requirements', selection];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [CONFORMANCE, 'server', '--url', url, ...select, '-o', out, '--timeout', '20000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  const checks: CheckResults = new Map();
  for (const dir of readdirSync(out)) {
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    let list: { id: string; status: string }[];
    try {
      list = JSON.parse(readFileSync(join(out, dir, 'checks.json'), 'utf8')) as { id: string; status: string }[];
    } catch {
      continue;
    }
    const seen = new Map<string, number>();
    for (const c of list) {
      const n = (seen.get(c.id) ?? 0) + 1;
      seen.set(c.id, n);
      checks.set(`${scenario}:${c.id}${n > 1 ? `#${n}` : ''}`, c.status);
    }
  }
  return { checks, output };
}

/** Checks that pass directly but not through the gateway. */
export function regressions(direct: CheckResults, via: CheckResults): string[] {
  const out: string[] = [];
  for (const [key, status] of direct) {
    if (status === 'SUCCESS' && via.get(key) !== 'SUCCESS') out.push(`${key}: direct SUCCESS, through Sluice ${via.get(key) ?? 'missing'}`);
  }
  return out;
}

export function passCount(c: CheckResults): number {
  return [...c.values()].filter((s) => s === 'SUCCESS').length;
}
