// One measurement each: the load runs on LOAD_CPU, the proxy's CPU and RSS come from /proc.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, rssMiB, runToEnd, startProc, type Proc } from './procs.ts';
import type { RunningTarget } from './targets.ts';
import { runWrk, TOOLS_CALL, type WrkResult } from './wrk.ts';

export const LOAD_CPU = 1;
const CLIENT = join(import.meta.dirname, 'client.ts');

export interface Throughput extends WrkResult {
  cpu_s_per_10k: number | null;
}

/** Closed-loop throughput at fixed concurrency, after a warm-up (Node's JIT needs one). */
export async function throughput(t: RunningTarget, url: string, script: string, warmS: number, seconds: number): Promise<Throughput> {
  await runWrk(LOAD_CPU, url, script, 50, warmS);
  const cpu0 = t.proc ? cpuSeconds(t.proc.pid) : 0;
  const r = await runWrk(LOAD_CPU, url, script, 50, seconds);
  const cpu = t.proc ? cpuSeconds(t.proc.pid) - cpu0 : null;
  return { ...r, cpu_s_per_10k: cpu === null || r.requests === 0 ? null : (cpu / r.requests) * 10_000 };
}

export interface FixedRate {
  rate: number;
  ok: number;
  errors: number;
  non2xx: number;
  lost: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  cpu_s_per_10k: number | null;
}

/** Open-loop load at a fixed rate: latency at equal load and the proxy's CPU per request. */
export async function fixedRate(t: RunningTarget, url: string, rate: number, seconds: number): Promise<FixedRate> {
  const cpu0 = t.proc ? cpuSeconds(t.proc.pid) : 0;
  const out = await runToEnd(LOAD_CPU, process.execPath, [CLIENT, 'rate', url, String(rate), String(seconds), '50', TOOLS_CALL], (seconds + 30) * 1000);
  const cpu = t.proc ? cpuSeconds(t.proc.pid) - cpu0 : null;
  const r = JSON.parse(out) as Omit<FixedRate, 'rate' | 'cpu_s_per_10k'> & { sent_with_warmup: number };
  // CPU covers the warm-up second too, so it is divided by every request sent.
  return { ...r, rate, cpu_s_per_10k: cpu === null || r.sent_with_warmup === 0 ? null : (cpu / r.sent_with_warmup) * 10_000 };
}

export interface SseLag {
  expected: number;
  received: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  first_p50_ms: number | null;
  first_max_ms: number | null;
}

export async function sseLag(base: string, streams: number, events: number, intervalMs: number): Promise<SseLag> {
  const out = await runToEnd(LOAD_CPU, process.execPath, [CLIENT, 'sse', base, String(streams), String(events), String(intervalMs)], events * intervalMs + 60_000);
  return JSON.parse(out) as SseLag;
}

export interface IdleStreams {
  requested: number;
  held: number;
  open_ms: number;
  rss_before_mib: number | null;
  rss_with_streams_mib: number | null;
  rss_mb_per_1k_streams: number | null;
  /** All N clients leave at once: ms until the upstream has no stream of theirs open. */
  teardown_ms: number | null;
  cancel_streams: number;
  upstream_open_1s_after_close: number;
  upstream_closed_on_cancel: boolean;
}

async function upstreamIdleOpen(rawStats: string): Promise<number> {
  const r = await fetch(rawStats);
  return ((await r.json()) as { idleOpen: number }).idleOpen;
}

async function holdStreams(url: string, count: number): Promise<{ holder: Proc; open: number; open_ms: number }> {
  const holder = startProc('idle-client', LOAD_CPU, process.execPath, [CLIENT, 'idle', url, String(count)]);
  try {
    const { open, open_ms } = JSON.parse(await lineFrom(holder.child.stdout, 120_000)) as { open: number; open_ms: number };
    return { holder, open, open_ms };
  } catch (err) {
    await holder.stop();
    throw err;
  }
}

async function dropStreams(holder: Proc): Promise<void> {
  holder.child.stdin?.write('close\n');
  await lineFrom(holder.child.stdout, 10_000);
  await holder.stop();
}

/**
 * Hold `count` idle SSE streams through the target and read the proxy's RSS; then let every client
 * go away at once and time the upstream teardown. Cancel propagation is judged separately, as in
 * the perf anchors: 200 streams, clients leave (FIN), upstream streams still open 1 s later.
 */
export async function idleStreams(t: RunningTarget, rawStats: string, count: number, cancelCount = 200): Promise<IdleStreams> {
  const baseline = await upstreamIdleOpen(rawStats);
  await sleep(500);
  const rssBefore = t.proc ? rssMiB(t.proc.pid) : null;
  const held = await holdStreams(`${t.raw}/idle`, count);
  await sleep(1_000); // let the proxy settle (allocations of the last streams, lazy timers)
  const rssWith = t.proc ? rssMiB(t.proc.pid) : null;
  const dropped = performance.now();
  await dropStreams(held.holder);
  let teardown: number | null = null;
  for (let i = 0; i < 300; i++) {
    if ((await upstreamIdleOpen(rawStats)) <= baseline) {
      teardown = Math.round(performance.now() - dropped);
      break;
    }
    await sleep(100);
  }
  await sleep(500);
  const base2 = await upstreamIdleOpen(rawStats);
  const cancel = await holdStreams(`${t.raw}/idle`, cancelCount);
  await dropStreams(cancel.holder);
  await sleep(1_000);
  const stillOpen = Math.max(0, (await upstreamIdleOpen(rawStats)) - base2);
  // Leave the upstream clean for the next target even when this one leaks.
  for (let i = 0; i < 40 && (await upstreamIdleOpen(rawStats)) > baseline; i++) await sleep(250);
  return {
    requested: count,
    held: held.open,
    open_ms: Math.round(held.open_ms),
    rss_before_mib: rssBefore,
    rss_with_streams_mib: rssWith,
    rss_mb_per_1k_streams: rssBefore !== null && rssWith !== null && held.open > 0 ? ((rssWith - rssBefore) / held.open) * 1000 : null,
    teardown_ms: teardown,
    cancel_streams: cancel.open,
    upstream_open_1s_after_close: stillOpen,
    upstream_closed_on_cancel: cancel.open > 0 && stillOpen === 0,
  };
}

function lineFrom(stream: NodeJS.ReadableStream | null, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!stream) return reject(new Error('no stdout'));
    let buf = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (d: Buffer | string): void => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(buf.slice(0, i));
    };
    stream.on('data', onData);
  });
}
