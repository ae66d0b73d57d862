// `npm run bench:federation [-- --seconds 8]`: what one misbehaving federation member costs the
// rest (issue 32). Sluice (its own process, `bin/sluice.js serve`) serves a relay route /other
// and federated routes that each pair a healthy server with a hostile one
// (test/fixtures/hostile-member.ts, in processes of their own). In each scenario clients drive
// one hostile member (a driver process of their own) while four clients call /other at a fixed
// rate (25 calls/s each, latency from each call's scheduled time); the baseline drives nothing. Reported per scenario: /other's
// p50, p99 and max, and Sluice's peak RSS, peak open file descriptors and CPU seconds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { registerDemoV1 } from '../src/demo/demo-tools.ts';
import { startUpstreamKit } from '../src/demo/upstream-kit.ts';
import { cpuSeconds, rssMiB, startProc, waitForPort } from './lib/procs.ts';
import { freePort } from './lib/targets.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    out: { type: 'string', default: join(import.meta.dirname, 'results') },
    // Internal: this script run as a scenario's driver, in a process of its own (its clients'
    // own work, such as validating 3.5 MiB lists, must not delay the calls being measured).
    drive: { type: 'string' },
    base: { type: 'string' },
    /** Only the scenarios whose name contains this (the baseline always runs). */
    only: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const RATE_MS = 40;
const log = (m: string): void => void process.stderr.write(`[federation-hostile] ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MEMBERS = join(import.meta.dirname, '..', 'test/fixtures/hostile-member.ts');

function members(args: string[]): Promise<{ child: ChildProcess; urls: Record<string, string> }> {
  const child = spawn(process.execPath, [MEMBERS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, urls: JSON.parse(out.split('\n')[0] as string) as Record<string, string> });
    });
    child.once('exit', () => reject(new Error('hostile members exited')));
  });
}

async function client(url: string): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : NaN;
};

type Driver = (stop: AbortSignal) => Promise<void>;
/** Runs `n` loops of `step` until stopped (each loop its own client). */
const loops = (base: string, n: number, route: string, step: (c: Client) => Promise<unknown>): Driver => async (stop) => {
  await Promise.all(
    Array.from({ length: n }, async () => {
      const c = await client(`${base}/${route}`);
      while (!stop.aborted) await step(c).catch(() => sleep(50));
      await c.close().catch(() => undefined);
    }),
  );
};
const scenarios = (base: string): [string, Driver | undefined][] => [
  ['baseline', undefined],
  ['storm (200,000 list_changed a second)', loops(base, 1, 'storm', async (c) => {
    await c.callTool({ name: 'storm__storm', arguments: { count: 200_000 } });
    await sleep(1000);
  })],
  ['hang (lists never answered, 4 clients listing)', loops(base, 4, 'hang', (c) => c.listTools())],
  ['pager (2 clients paging forever)', loops(base, 2, 'pager', async (c) => {
    let cursor: string | undefined;
    for (let i = 0; i < 50; i++) cursor = (await c.listTools(cursor ? { cursor } : {})).nextCursor;
  })],
  ['10 MiB lists (refused, 2 clients)', loops(base, 2, 'huge', (c) => c.listTools())],
  ['3.5 MiB lists (accepted, 2 clients)', loops(base, 2, 'big', (c) => c.listTools())],
];

if (values.drive !== undefined) {
  // A driver: run the named scenario's clients until stdin closes (the measuring process ends it).
  const drive = scenarios(values.base as string).find(([name]) => name === values.drive)?.[1];
  const stop = new AbortController();
  process.stdin.on('close', () => stop.abort()).resume();
  await drive?.(stop.signal);
  process.exit(0);
}

/** A scenario's driver in a process of its own; resolves its stop. */
function startDriver(name: string, base: string): () => Promise<void> {
  const child = spawn(process.execPath, [import.meta.filename, '--drive', name, '--base', base], { stdio: ['pipe', 'ignore', 'inherit'] });
  return async () => {
    child.stdin?.end();
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(15_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
}

const work = mkdtempSync(join(tmpdir(), 'sluice-fed-bench-'));
const quick = await startUpstreamKit({ name: 'quick', eras: 'legacy', registerV1: registerDemoV1, registerV2: () => undefined });
const tenMiB = await members([]);
const underBound = await members(['--huge-bytes', String(3.5 * 1024 * 1024)]);
const port = await freePort();
const cfg = join(work, 'sluice.yaml');
const fed = (name: string, url: string) => `  - { path: /${name}, servers: { quick: { upstream: ${quick.url} }, ${name}: { upstream: ${url} } } }`;
writeFileSync(
  cfg,
  [
    `listen: [{ host: 127.0.0.1, port: ${port} }]`,
    'federation: { listTimeout: 1s }',
    'routes:',
    `  - { path: /other, upstream: ${quick.url} }`,
    fed('storm', tenMiB.urls['storm'] as string),
    fed('hang', tenMiB.urls['hang'] as string),
    fed('pager', tenMiB.urls['pager'] as string),
    fed('huge', tenMiB.urls['huge'] as string),
    fed('big', underBound.urls['huge'] as string),
  ].join('\n'),
);
const path = `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`;
const sluice = startProc('sluice', undefined, process.execPath, [join(import.meta.dirname, '..', 'bin/sluice.js'), 'serve', '--config', cfg], { PATH: path }, 'ignore');
const base = `http://127.0.0.1:${port}`;
const fdsOf = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
};

const rows: Record<string, unknown>[] = [];
try {
  await waitForPort(port, sluice);
  // Warm-up: every route once.
  for (const r of ['other', 'storm', 'pager']) await (await client(`${base}/${r}`)).close();
  for (const [name, drive] of scenarios(base).filter(([n]) => n === 'baseline' || !values.only || n.includes(values.only))) {
    log(name);
    const stopDriver = drive ? startDriver(name, base) : undefined;
    await sleep(drive ? 1500 : 0);
    const cpu0 = cpuSeconds(sluice.pid);
    let rss = 0;
    let fds = 0;
    const sampler = setInterval(() => {
      rss = Math.max(rss, rssMiB(sluice.pid));
      fds = Math.max(fds, fdsOf(sluice.pid));
    }, 200);
    const lat: number[] = [];
    let errors = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        const c = await client(`${base}/other`);
        const start = performance.now();
        for (let i = 0; i < (SECONDS * 1000) / RATE_MS; i++) {
          const due = start + i * RATE_MS;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          const ok = await c.callTool({ name: 'echo', arguments: { message: 'x' } }).then(() => true, () => false);
          if (ok) lat.push(performance.now() - due);
          else errors++;
        }
        await c.close();
      }),
    );
    clearInterval(sampler);
    const cpu = cpuSeconds(sluice.pid) - cpu0;
    await stopDriver?.();
    rows.push({ scenario: name, calls: lat.length, errors, p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), max_ms: Math.max(...lat), rss_peak_mib: rss, fds_peak: fds, sluice_cpu_s: cpu });
    log(JSON.stringify(rows.at(-1)));
    await sleep(1500);
  }
} finally {
  await sluice.stop();
  tenMiB.child.kill('SIGTERM');
  underBound.child.kill('SIGTERM');
  await quick.close();
  rmSync(work, { recursive: true, force: true });
}

const f = (n: unknown, d = 1): string => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '—');
const md = [
  `# One hostile federation member, another route's calls (${SECONDS} s a scenario, 4 × 25 calls/s on /other)`,
  '',
  '| scenario | /other p50 ms | p99 ms | max ms | errors | Sluice RSS peak MiB | fds peak | Sluice CPU s |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${String(r['scenario'])} | ${f(r['p50_ms'])} | ${f(r['p99_ms'])} | ${f(r['max_ms'])} | ${String(r['errors'])} | ${f(r['rss_peak_mib'], 0)} | ${String(r['fds_peak'])} | ${f(r['sluice_cpu_s'], 2)} |`),
  '',
].join('\n');
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'federation-hostile.md'), md);
writeFileSync(join(values.out, 'federation-hostile.json'), JSON.stringify(rows, null, 2));
process.stdout.write(md);
process.exit(0);
