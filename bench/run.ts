// `npm run bench [-- --quick]`: Sluice side by side with direct, nginx and HAProxy in one run.
// Load on CPU 1; proxy and upstreams on CPU 0, so the proxy's cost shows up in throughput as it
// would on a busy host. Writes bench/results/latest.{json,md} and prints the Markdown table.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMicro } from './lib/micro.ts';
import { HAS_TASKSET, startProc, waitForPort } from './lib/procs.ts';
import { renderMarkdown, summarizeRounds, type RoundResult } from './lib/report.ts';
import { fixedRate, idleStreams, sseLag, throughput } from './lib/scenarios.ts';
import { freePort, MAX_STREAMS, startTarget, TARGETS, type TargetName } from './lib/targets.ts';
import { writeWrkScript } from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    // The test suite's run: the quick form with the shortest windows. It proves every target and
    // scenario runs and reports; its figures are too short to quote.
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    targets: { type: 'string' },
    streams: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string', default: join(import.meta.dirname, 'results') },
  },
});
const smoke = values.smoke ?? false;
const quick = (values.quick ?? false) || smoke;
const plan = {
  mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
  rounds: Number(values.rounds ?? (quick ? 1 : 3)),
  warmS: smoke ? 1 : quick ? 2 : 5,
  wrkS: smoke ? 2 : quick ? 4 : 10,
  rateS: smoke ? 2 : quick ? 3 : 8,
  rawRate: 2_000,
  sdkRate: 500,
  sseStreams: quick ? 20 : 50,
  sseEvents: quick ? 30 : 50,
  sseIntervalMs: 20,
  idleStreams: Number(values.streams ?? (quick ? 2_000 : 8_000)),
};
const SCENARIOS = ['raw', 'raw-rate', 'sdk', 'sdk-rate', 'sse', 'idle'] as const;
const only = new Set(values.only?.split(',') ?? SCENARIOS);
for (const o of only) if (!(SCENARIOS as readonly string[]).includes(o)) throw new Error(`unknown scenario ${o}; known: ${SCENARIOS.join(', ')}`);
if (plan.idleStreams > MAX_STREAMS) {
  process.stderr.write(`[bench] ${plan.idleStreams} idle streams exceed what this machine's open-files limit allows per proxy; using ${MAX_STREAMS}\n`);
  plan.idleStreams = MAX_STREAMS;
}
const targets = (values.targets?.split(',') ?? TARGETS) as TargetName[];
for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; known: ${TARGETS.join(', ')}`);

const repoRoot = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
const script = writeWrkScript(work);
const started = Date.now();
const log = (msg: string): void => void process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);

function version(cmd: string, args: string[]): string {
  // nginx prints its version on stderr, the others on stdout.
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() || 'unknown';
}

const rawPort = await freePort();
const sdkPort = await freePort();
const raw = startProc('upstream-raw', 0, process.execPath, [join(import.meta.dirname, 'lib/upstream-raw.ts'), String(rawPort)]);
const sdk = startProc('upstream-sdk', 0, process.execPath, [join(import.meta.dirname, 'lib/upstream-sdk.ts'), String(sdkPort)]);
const rounds: RoundResult[] = [];
try {
  await waitForPort(rawPort, raw);
  await waitForPort(sdkPort, sdk);
  const up = { raw: rawPort, sdk: sdkPort };
  const rawStats = `http://127.0.0.1:${rawPort}/stats`;
  log(`${plan.mode} run, ${plan.rounds} round(s), targets ${targets.join(', ')}${HAS_TASKSET ? '' : ' (no taskset: not pinned)'}`);
  for (let round = 1; round <= plan.rounds; round++) {
    for (const name of targets) {
      const t = await startTarget(name, up, work, repoRoot);
      const r: RoundResult = { round, target: name };
      try {
        if (only.has('raw')) {
          log(`round ${round} ${name}: raw throughput`);
          r.raw = await throughput(t, `${t.raw}/mcp`, script, plan.warmS, plan.wrkS);
        }
        if (only.has('raw-rate')) {
          // A cold Node process runs its first thousands of requests in the interpreter: every
          // target gets the same warm-up before the measured window.
          if (!only.has('raw')) await throughput(t, `${t.raw}/mcp`, script, 1, plan.warmS);
          log(`round ${round} ${name}: raw at ${plan.rawRate}/s`);
          r.rawRate = await fixedRate(t, `${t.raw}/mcp`, plan.rawRate, plan.rateS);
        }
        if (only.has('sdk')) {
          log(`round ${round} ${name}: SDK throughput`);
          r.sdk = await throughput(t, `${t.sdk}/mcp`, script, plan.warmS, plan.wrkS);
        }
        if (only.has('sdk-rate')) {
          log(`round ${round} ${name}: SDK at ${plan.sdkRate}/s`);
          r.sdkRate = await fixedRate(t, `${t.sdk}/mcp`, plan.sdkRate, plan.rateS);
        }
        if (only.has('sse')) {
          log(`round ${round} ${name}: SSE lag`);
          r.sse = await sseLag(t.raw, plan.sseStreams, plan.sseEvents, plan.sseIntervalMs);
        }
      } finally {
        await t.stop();
      }
      if (!only.has('idle')) {
        rounds.push(r);
        continue;
      }
      // Memory per stream is read on a fresh process, as the anchors did, so garbage from the
      // load runs above does not blur it.
      const fresh = await startTarget(name, up, work, repoRoot);
      try {
        log(`round ${round} ${name}: ${plan.idleStreams} idle SSE streams`);
        r.idle = await idleStreams(fresh, rawStats, plan.idleStreams);
      } finally {
        await fresh.stop();
      }
      rounds.push(r);
    }
  }
} finally {
  await raw.stop();
  await sdk.stop();
  rmSync(work, { recursive: true, force: true });
}

log('micro-benchmarks');
const micro = await runMicro(quick);
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  kernel: version('uname', ['-r']),
  node: process.version,
  nginx: version('nginx', ['-v']),
  haproxy: version('haproxy', ['-v']),
  wrk: version('wrk', ['-v']),
  pinned: HAS_TASKSET,
};
const summary = summarizeRounds(rounds, targets, micro);
const date = new Date().toISOString();
const result = { date, mode: plan.mode, plan, machine, targets: summary.targets, goals: summary.goals, micro, rounds };
mkdirSync(values.out ?? '.', { recursive: true });
const md = renderMarkdown(result);
writeFileSync(join(values.out ?? '.', 'latest.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(values.out ?? '.', 'latest.md'), md);
process.stdout.write(md);
log(`done; wrote ${join(values.out ?? '.', 'latest.json')} and latest.md`);
