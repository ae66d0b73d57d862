// `npm run bench:scaling [-- --workers N --proxy-cpus 0-3 --load-cpus 4-5 --seconds 8]`: Sluice
// with 1 worker and with N (`serve --workers`), side by side in one run, on the raw JSON case:
// requests per second at a fixed concurrency and the proxy's CPU per 10k requests (the whole
// process tree, primary included). The proxy is pinned to --proxy-cpus and the load (wrk) and
// the upstream to --load-cpus, so the same script shows real scaling on a host with cores to
// spare; on a 2-core VM the load, the upstream and the workers share two cores and the figure
// says how much of a second core a second worker can find.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, runToEnd, startProc, waitForPort } from './lib/procs.ts';
import { freePort } from './lib/targets.ts';
import { parseWrk, writeWrkScript } from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string' },
    'proxy-cpus': { type: 'string' },
    'load-cpus': { type: 'string' },
    seconds: { type: 'string', default: '8' },
    connections: { type: 'string', default: '100' },
    out: { type: 'string', default: join(import.meta.dirname, 'results') },
  },
});
const cores = availableParallelism();
const n = Number(values.workers ?? Math.max(2, cores));
const proxyCpus = values['proxy-cpus'] ?? (cores > 2 ? `0-${Math.max(0, cores - 2)}` : '0-1');
const loadCpus = values['load-cpus'] ?? String(cores - 1);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const log = (m: string): void => void process.stderr.write(`[scaling] ${m}\n`);

const work = mkdtempSync(join(tmpdir(), 'sluice-scaling-'));
const script = writeWrkScript(work);
const rawPort = await freePort();
const upstream = startProc('upstream-raw', undefined, 'taskset', ['-c', loadCpus, process.execPath, join(import.meta.dirname, 'lib/upstream-raw.ts'), String(rawPort)]);
const rows: { workers: number; rps: number; p99_ms: number | null; cpu_s_per_10k: number; errors: number }[] = [];
try {
  await waitForPort(rawPort, upstream);
  for (const w of [1, n]) {
    const port = await freePort();
    const dir = join(work, `w${w}`);
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(cfg, `listen: [{ host: 127.0.0.1, port: ${port} }]\nworkers: ${w}\nroutes:\n  - { path: /raw, upstream: "http://127.0.0.1:${rawPort}/raw" }\n`);
    const path = `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`;
    const proc = startProc('sluice', undefined, 'taskset', ['-c', proxyCpus, join(import.meta.dirname, '..', 'bin/sluice.js'), 'serve', '--config', cfg], { PATH: path }, 'ignore');
    try {
      await waitForPort(port, proc);
      const url = `http://127.0.0.1:${port}/raw/mcp`;
      const wrk = (s: number) => runToEnd(undefined, 'taskset', ['-c', loadCpus, 'wrk', '-t1', `-c${connections}`, `-d${s}s`, '--latency', '-s', script, url], (s + 30) * 1000);
      log(`${w} worker(s): warm-up`);
      await wrk(3);
      const cpu0 = cpuSeconds(proc.pid);
      log(`${w} worker(s): ${seconds} s at ${connections} connections`);
      const r = parseWrk(await wrk(seconds));
      const cpu = cpuSeconds(proc.pid) - cpu0;
      rows.push({ workers: w, rps: r.rps, p99_ms: r.p99_ms, cpu_s_per_10k: r.requests ? (cpu / r.requests) * 10_000 : 0, errors: r.errors + r.non2xx });
    } finally {
      await proc.stop();
    }
  }
} finally {
  await upstream.stop();
  rmSync(work, { recursive: true, force: true });
}
const base = rows[0];
const md = [
  `Sluice scaling, raw JSON, ${connections} connections, ${seconds} s; proxy on CPUs ${proxyCpus}, load and upstream on ${loadCpus} (${cores} cores)`,
  '',
  '| workers | req/s | × 1 worker | p99 ms | proxy CPU s per 10k | errors |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.workers} | ${Math.round(r.rps)} | ${base ? (r.rps / base.rps).toFixed(2) : '-'} | ${r.p99_ms ?? '-'} | ${r.cpu_s_per_10k.toFixed(3)} | ${r.errors} |`),
  '',
].join('\n');
mkdirSync(values.out ?? '.', { recursive: true });
writeFileSync(join(values.out ?? '.', 'scaling.json'), JSON.stringify({ date: new Date().toISOString(), cores, proxyCpus, loadCpus, connections, seconds, rows }, null, 2) + '\n');
writeFileSync(join(values.out ?? '.', 'scaling.md'), md);
process.stdout.write(md);
