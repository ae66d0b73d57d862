// `npm run bench:cluster [-- --calls 400]`: what a cluster hand-off costs (issue 33). Three Sluice
// instances (`serve`, one process each, 127.0.0.2-4, sharing only their session keys); one stdio
// session owned by the first. Its tool calls sent to the owner's own port and to another
// instance's port (handed over the peer listener), interleaved: latency p50/p99 of each and the
// difference. Then, behind a round-robin spread of requests over the three, how many of 100 are
// handed off; and what a killed owner costs its client (the 404, and a new session).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newKeyText } from '../src/session/key-ring.ts';
import { freePort } from './lib/targets.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '400' } } });
const CALLS = Number(values.calls);
const HOSTILE = join(import.meta.dirname, '..', 'test/fixtures/hostile-stdio-server.ts');
const SLUICE = join(import.meta.dirname, '..', 'bin/sluice.js');
const keys = newKeyText();
const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-bench-'));
const H = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

interface Instance {
  base: string;
  child: ChildProcess;
}

async function start(host: string): Promise<Instance> {
  const port = await freePort();
  const peer = await freePort();
  const cfg = join(dir, `${host}.yaml`);
  writeFileSync(
    cfg,
    [
      `listen: [{ host: ${host}, port: ${port}, allowHosts: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] }]`,
      `cluster: { listen: { host: ${host}, port: ${peer} } }`,
      'logging: { access: false }',
      'routes:',
      `  - { path: /s, upstream: { stdio: { command: ${process.execPath}, args: [${HOSTILE}] } } }`,
    ].join('\n'),
  );
  const child = spawn(process.execPath, [SLUICE, 'serve', '--config', cfg], { env: { ...process.env, SLUICE_SESSION_KEYS: keys }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let t = '';
    child.stderr?.on('data', (d: Buffer) => {
      t += d.toString();
      if (t.includes(`${host}:${port}`)) resolve();
    });
    child.once('exit', () => reject(new Error(t)));
  });
  return { base: `http://${host}:${port}/s`, child };
}

async function post(url: string, body: unknown, session?: string): Promise<{ status: number; session: string | null; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(url, { method: 'POST', headers: { ...H, ...(session ? { 'mcp-session-id': session } : {}) }, body: JSON.stringify(body) });
  await r.text();
  return { status: r.status, session: r.headers.get('mcp-session-id'), ms: performance.now() - t0 };
}

async function session(url: string): Promise<string> {
  const init = await post(url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.session as string);
  return init.session as string;
}

const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'pid', arguments: {} } });
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;

const instances = [await start('127.0.0.2'), await start('127.0.0.3'), await start('127.0.0.4')];
try {
  const [owner, other] = instances as [Instance, Instance, Instance];
  const sid = await session(owner.base);
  for (let i = 0; i < 50; i++) await post(i % 2 ? other.base : owner.base, call(i), sid); // warm-up
  const direct: number[] = [];
  const handed: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const d = await post(owner.base, call(1000 + i), sid);
    const h = await post(other.base, call(5000 + i), sid);
    if (d.status !== 200 || h.status !== 200) throw new Error(`status ${d.status} ${h.status}`);
    direct.push(d.ms);
    handed.push(h.ms);
  }
  // Round robin over the three, as a balancer with no affinity spreads one session's requests.
  let away = 0;
  for (let i = 0; i < 300; i++) if (instances[i % 3] !== owner) away++;
  // A killed owner: the client's next request answers 404 wherever it lands; a new session is made on a live instance.
  owner.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const lost = await post(other.base, call(9000), sid);
  const t0 = performance.now();
  const again = await session(other.base);
  const first = await post(other.base, call(9001), again);
  const recover = performance.now() - t0;
  const f = (n: number): string => n.toFixed(2);
  process.stdout.write(
    [
      `# A cluster hand-off (${CALLS} calls each way, interleaved; stdio tool call 'pid')`,
      '',
      '| path | p50 ms | p99 ms |',
      '|---|---|---|',
      `| to the owner's own port | ${f(pct(direct, 50))} | ${f(pct(direct, 99))} |`,
      `| to another instance, handed to the owner | ${f(pct(handed, 50))} | ${f(pct(handed, 99))} |`,
      `| added by the hand-off | ${f(pct(handed, 50) - pct(direct, 50))} | ${f(pct(handed, 99) - pct(direct, 99))} |`,
      '',
      `Round robin over three instances: ${Math.round((away / 300) * 100)} of 100 requests of a session are handed off.`,
      `A killed owner: the next request answers ${lost.status}; a new session and its first call took ${f(recover)} ms (status ${first.status}).`,
      '',
    ].join('\n'),
  );
} finally {
  for (const i of instances) i.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
