// Medians over rounds, ratios against direct and nginx, the issue's goals, and the Markdown table.
import type { MicroResult } from './micro.ts';
import type { FixedRate, IdleStreams, SseLag, Throughput } from './scenarios.ts';
import { median, round } from './stats.ts';
import type { TargetName } from './targets.ts';

export interface RoundResult {
  round: number;
  target: TargetName;
  raw?: Throughput;
  rawRate?: FixedRate;
  sdk?: Throughput;
  sdkRate?: FixedRate;
  sse?: SseLag;
  idle?: IdleStreams;
}

export interface TargetSummary {
  target: TargetName;
  rps: number | null;
  rps_vs_direct: number | null;
  rps_vs_nginx: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  added_p50_ms: number | null;
  cpu_s_per_10k: number | null;
  cpu_vs_nginx: number | null;
  cpu_s_per_10k_saturated: number | null;
  sdk_rps: number | null;
  sdk_rps_vs_direct: number | null;
  sdk_p50_ms: number | null;
  sdk_p99_ms: number | null;
  sdk_cpu_s_per_10k: number | null;
  sse_lag_p50_ms: number | null;
  sse_lag_p99_ms: number | null;
  sse_lag_max_ms: number | null;
  sse_first_event_p50_ms: number | null;
  sse_events: string;
  sse_batching: boolean;
  streams_held: string;
  rss_mb_per_1k_streams: number | null;
  stream_open_ms: number | null;
  teardown_ms: number | null;
  upstream_closed_on_cancel: boolean;
  upstream_open_1s_after_close: number | null;
  failed_requests: number;
  /** Requests sent in the load scenarios (what failed_requests is a share of). */
  total_requests: number;
}

export interface Goal {
  goal: string;
  value: string;
  met: boolean | null;
}

const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : round(a / b, 2);

export function summarizeRounds(
  rounds: RoundResult[],
  targets: TargetName[],
  micro: MicroResult,
): { targets: TargetSummary[]; goals: Goal[] } {
  const base = targets.map((target) => {
    const rs = rounds.filter((r) => r.target === target);
    const m = (f: (r: RoundResult) => number | null | undefined): number | null => median(rs.map((r) => f(r) ?? null));
    const failed = rs.reduce((n, r) => {
      for (const x of [r.raw, r.sdk]) n += (x?.errors ?? 0) + (x?.non2xx ?? 0);
      for (const x of [r.rawRate, r.sdkRate]) n += (x?.errors ?? 0) + (x?.non2xx ?? 0) + (x?.lost ?? 0);
      return n;
    }, 0);
    const total = rs.reduce((n, r) => {
      for (const x of [r.raw, r.sdk]) n += x?.requests ?? 0;
      for (const x of [r.rawRate, r.sdkRate]) n += x ? x.ok + x.errors + x.non2xx + x.lost : 0;
      return n;
    }, 0);
    return {
      target,
      rps: round(
        m((r) => r.raw?.rps),
        0,
      ),
      p50_ms: round(
        m((r) => r.rawRate?.p50_ms),
        3,
      ),
      p99_ms: round(
        m((r) => r.rawRate?.p99_ms),
        3,
      ),
      cpu_s_per_10k: round(
        m((r) => r.rawRate?.cpu_s_per_10k),
        3,
      ),
      cpu_s_per_10k_saturated: round(
        m((r) => r.raw?.cpu_s_per_10k),
        3,
      ),
      sdk_rps: round(
        m((r) => r.sdk?.rps),
        0,
      ),
      sdk_p50_ms: round(
        m((r) => r.sdkRate?.p50_ms),
        3,
      ),
      sdk_p99_ms: round(
        m((r) => r.sdkRate?.p99_ms),
        3,
      ),
      sdk_cpu_s_per_10k: round(
        m((r) => r.sdkRate?.cpu_s_per_10k),
        3,
      ),
      sse_lag_p50_ms: round(
        m((r) => r.sse?.p50_ms),
        3,
      ),
      sse_lag_p99_ms: round(
        m((r) => r.sse?.p99_ms),
        3,
      ),
      sse_lag_max_ms: round(Math.max(...rs.map((r) => r.sse?.max_ms ?? 0)), 3),
      sse_first_event_p50_ms: round(
        m((r) => r.sse?.first_p50_ms),
        3,
      ),
      sse_events: rs.map((r) => `${r.sse?.received ?? 0}/${r.sse?.expected ?? 0}`).join(' '),
      sse_batching: rs.some((r) => (r.sse?.max_ms ?? 0) >= 100),
      streams_held: rs.map((r) => `${r.idle?.held ?? 0}/${r.idle?.requested ?? 0}`).join(' '),
      rss_mb_per_1k_streams: round(
        m((r) => r.idle?.rss_mb_per_1k_streams),
        2,
      ),
      stream_open_ms: round(
        m((r) => r.idle?.open_ms),
        0,
      ),
      teardown_ms: round(
        m((r) => r.idle?.teardown_ms),
        0,
      ),
      upstream_closed_on_cancel: rs.length > 0 && rs.every((r) => r.idle?.upstream_closed_on_cancel === true),
      upstream_open_1s_after_close: m((r) => r.idle?.upstream_open_1s_after_close),
      failed_requests: failed,
      total_requests: total,
    };
  });
  const direct = base.find((t) => t.target === 'direct');
  const nginx = base.find((t) => t.target === 'nginx');
  const summaries: TargetSummary[] = base.map((t) => ({
    ...t,
    rps_vs_direct: ratio(t.rps, direct?.rps ?? null),
    rps_vs_nginx: ratio(t.rps, nginx?.rps ?? null),
    added_p50_ms:
      t.target === 'direct' || t.p50_ms === null || !direct?.p50_ms ? null : round(t.p50_ms - direct.p50_ms, 3),
    cpu_vs_nginx: ratio(t.cpu_s_per_10k, nginx?.cpu_s_per_10k ?? null),
    sdk_rps_vs_direct: ratio(t.sdk_rps, direct?.sdk_rps ?? null),
  }));
  return { targets: summaries, goals: goals(summaries, micro) };
}

function goals(ts: TargetSummary[], micro: MicroResult): Goal[] {
  const s = ts.find((t) => t.target === 'sluice');
  const nginx = ts.find((t) => t.target === 'nginx');
  if (!s) return [];
  const g = (goal: string, value: number | null, ok: (v: number) => boolean, unit = ''): Goal => ({
    goal,
    value: value === null ? 'n/a' : `${value}${unit}`,
    met: value === null ? null : ok(value),
  });
  const token = micro.find((m) => m.name.startsWith('session-token seal + open'))?.per_op_us ?? null;
  return [
    g('CPU per 10k JSON requests ≤ 2.5× nginx (at 2,000 req/s)', s.cpu_vs_nginx, (v) => v <= 2.5, '×'),
    g('SDK-upstream req/s ≥ 0.75× direct', s.sdk_rps_vs_direct, (v) => v >= 0.75, '×'),
    g('added p50 ≤ 1 ms over direct at 2,000 req/s', s.added_p50_ms, (v) => v <= 1, ' ms'),
    g('RSS ≤ 12 MiB per 1,000 idle SSE streams', s.rss_mb_per_1k_streams, (v) => v <= 12, ' MiB'),
    g('session-token seal + open ≤ 10 µs', token === null ? null : Number(token.toFixed(2)), (v) => v <= 10, ' µs'),
    g('no SSE batching (every event < 100 ms)', s.sse_lag_max_ms, (v) => v < 100, ' ms max'),
    g(
      'SSE lag p99 ≤ nginx p99 (same run)',
      s.sse_lag_p99_ms,
      (v) => nginx?.sse_lag_p99_ms == null || v <= nginx.sse_lag_p99_ms,
      ' ms',
    ),
    {
      goal: '100% of upstream streams closed within 1 s of the client (200 streams)',
      value: s.upstream_closed_on_cancel ? 'yes' : `no (${s.upstream_open_1s_after_close} open)`,
      met: s.upstream_closed_on_cancel,
    },
  ];
}

/** Sluice against node:http + undici with nothing on top, and against nginx: what is Sluice's own. */
function floorLines(ts: TargetSummary[]): string[] {
  const s = ts.find((t) => t.target === 'sluice');
  const floor = ts.find((t) => t.target === 'node-floor');
  const nginx = ts.find((t) => t.target === 'nginx');
  if (!s || !floor) return [];
  const row = (what: string, k: keyof TargetSummary, d: number): string => {
    const [a, b, c] = [s[k], floor[k], nginx?.[k]] as (number | null | undefined)[];
    const r = (p: number | null | undefined, q: number | null | undefined): string =>
      typeof p === 'number' && typeof q === 'number' && q !== 0 ? `${(p / q).toFixed(2)}×` : '–';
    return `| ${what} | ${f(a ?? null, d)} | ${f(b ?? null, d)} | ${f(c ?? null, d)} | ${r(a, b)} | ${r(b, c)} |`;
  };
  return [
    '',
    '| Sluice above its floor (node:http + undici, nothing else) | Sluice | floor | nginx | Sluice / floor | floor / nginx |',
    '|---|---|---|---|---|---|',
    row('proxy CPU s per 10k @2,000/s', 'cpu_s_per_10k', 3),
    row('req/s raw c50', 'rps', 0),
    row('SDK-upstream req/s c50', 'sdk_rps', 0),
    row('RSS MiB per 1k idle streams', 'rss_mb_per_1k_streams', 2),
  ];
}

const f = (v: number | null, d = 2): string =>
  v === null ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d });
const x = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)}×`);

export function renderMarkdown(r: {
  date: string;
  mode: string;
  plan: {
    rounds: number;
    rawRate: number;
    sdkRate: number;
    sseStreams: number;
    sseEvents: number;
    idleStreams: number;
  };
  machine: {
    cpu: string;
    cores: number;
    kernel: string;
    node: string;
    nginx: string;
    haproxy: string;
    pinned: boolean;
  };
  targets: TargetSummary[];
  goals: Goal[];
  micro: MicroResult;
}): string {
  const p = r.plan;
  const lines = [
    `### Benchmark ${r.date.slice(0, 10)} (${r.mode}, ${p.rounds} round${p.rounds > 1 ? 's' : ''}, medians)`,
    '',
    `Machine: ${r.machine.cores} × ${r.machine.cpu}, Linux ${r.machine.kernel}, Node ${r.machine.node}, ${r.machine.nginx}, ${r.machine.haproxy}. ` +
      (r.machine.pinned ? 'Load on CPU 1; proxy and upstreams on CPU 0.' : 'Not pinned (no taskset).'),
    '',
    `| target | req/s raw c50 | vs direct | vs nginx | p50 / p99 ms @${p.rawRate}/s | added p50 ms | proxy CPU s/10k @${p.rawRate}/s | CPU vs nginx | SDK req/s c50 | SDK vs direct | SDK p50 / p99 ms @${p.sdkRate}/s | SSE lag p50 / p99 / max ms | idle SSE streams held | RSS MiB / 1k streams | open / teardown of all, ms | upstream closed ≤ 1 s |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const t of r.targets) {
    lines.push(
      `| ${t.target} | ${f(t.rps, 0)} | ${x(t.rps_vs_direct)} | ${x(t.rps_vs_nginx)} | ${f(t.p50_ms)} / ${f(t.p99_ms)} | ${f(t.added_p50_ms)} | ${f(t.cpu_s_per_10k, 3)} | ${x(t.cpu_vs_nginx)} | ${f(t.sdk_rps, 0)} | ${x(t.sdk_rps_vs_direct)} | ${f(t.sdk_p50_ms)} / ${f(t.sdk_p99_ms)} | ${f(t.sse_lag_p50_ms)} / ${f(t.sse_lag_p99_ms)} / ${f(t.sse_lag_max_ms)} | ${t.streams_held} | ${t.target === 'direct' ? '–' : f(t.rss_mb_per_1k_streams)} | ${f(t.stream_open_ms, 0)} / ${f(t.teardown_ms, 0)} | ${t.target === 'direct' ? '–' : t.upstream_closed_on_cancel ? 'yes' : `no (${t.upstream_open_1s_after_close})`} |`,
    );
  }
  lines.push(...floorLines(r.targets));
  const failed = r.targets.filter((t) => t.failed_requests > 0);
  if (failed.length)
    lines.push('', `Failed or non-2xx requests: ${failed.map((t) => `${t.target} ${t.failed_requests}`).join(', ')}.`);
  lines.push(
    '',
    `SSE: ${p.sseStreams} streams × ${p.sseEvents} events 20 ms apart, lag from upstream write to client read. Idle: ${p.idleStreams} streams on a fresh proxy process, opened together, then all clients leave at once (teardown: until the upstream has none left); cancel: 200 streams whose clients leave, upstream streams still open 1 s later.`,
  );
  if (r.goals.length) {
    lines.push('', '| Sluice goal | measured | met |', '|---|---|---|');
    for (const g of r.goals)
      lines.push(`| ${g.goal} | ${g.value} | ${g.met === null ? 'n/a' : g.met ? 'yes' : '**no**'} |`);
  }
  lines.push('', '| micro-benchmark | per operation |', '|---|---|');
  for (const m of r.micro)
    lines.push(`| ${m.name} | ${m.per_op_us === null ? `n/a (${m.note ?? ''})` : `${m.per_op_us.toFixed(3)} µs`} |`);
  return lines.join('\n') + '\n';
}
