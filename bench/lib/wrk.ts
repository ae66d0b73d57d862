// wrk (C, closed loop) for throughput at fixed concurrency; its output parsed into numbers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runToEnd } from './procs.ts';

export const TOOLS_CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });

export interface WrkResult {
  rps: number;
  requests: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  non2xx: number;
}

export function writeWrkScript(dir: string): string {
  const file = join(dir, 'post.lua');
  writeFileSync(
    file,
    `wrk.method = "POST"
wrk.body = '${TOOLS_CALL}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
`,
  );
  return file;
}

export async function runWrk(cpu: number, url: string, script: string, connections: number, seconds: number): Promise<WrkResult> {
  const out = await runToEnd(cpu, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], (seconds + 30) * 1000);
  return parseWrk(out);
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function parseWrk(out: string): WrkResult {
  const lat = (p: string): number | null => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m?.[1] && m[2] ? toMs(m[1], m[2]) : null;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk output:\n${out}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, requests, p50_ms: lat('50'), p99_ms: lat('99'), errors, non2xx };
}
