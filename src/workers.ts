// `sluice serve --workers N`: N worker processes (node:cluster) share the public listeners; the
// primary holds no traffic. It gives every worker the same session keys (so any worker opens any
// session token) and log-hash key, tells each where the others' private sockets are (a broker
// session's requests are handed to the worker that holds it, src/broker/peers.ts), restarts a
// worker that dies, forwards SIGHUP (each worker reloads the config file) and on SIGTERM drains
// them all before it exits. The admin listener is the primary's: /healthz, /readyz (ready when
// every worker is), /metrics (the workers' metrics summed by prom-client's aggregator, plus each
// worker's own process figures), /admin/federation, and the registration API, handed to one worker
// (which writes the registrations file) while the others read the file again.
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Config } from './config/schema.ts';
import type { Gateway } from './app.ts';
import { accessWriter, muteLog, type Logger } from './observability/logger.ts';
import { Agent, request } from 'undici';
import { tokenMatches } from './proxy/admin-server.ts';
import { GuessThrottle } from './proxy/admin-throttle.ts';
import { hostAllowed, listenerPolicy, originAllowed } from './security/host-origin.ts';
import { newKeyText } from './session/key-ring.ts';
import { childLifecycle } from './broker/stdio-child.ts';

/**
 * The restart budget: a worker that dies is started again at once (after a second when it died
 * within 10 s of its start), however many die together; more than RESTART_BUDGET restarts within
 * RESTART_WINDOW_MS means something is wrong that restarting will not fix, and the primary stops
 * the rest and exits 1, so that its supervisor (systemd, Kubernetes) sees the failure.
 */
export const RESTART_BUDGET = 10;
export const RESTART_WINDOW_MS = 60_000;

type Msg = { type: string; id?: number; [k: string]: unknown };

export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** In a worker: what the primary asks of it, and what it tells the primary. */
export function serveAsWorker(gw: Gateway): void {
  const metrics = gw.ctx.metrics;
  if (metrics) {
    // The aggregator's listeners answer the primary's metrics requests with this registry.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
  }
  process.on('message', (m: Msg) => {
    if (m.type === 'sluice:peers') gw.peers?.set(m['all'] as Record<string, string>);
    else if (m.type === 'sluice:ready?') process.send?.({ type: 'sluice:ready', id: m.id, problems: gw.notReady() });
    else if (m.type === 'sluice:federation?')
      process.send?.({ type: 'sluice:federation', id: m.id, routes: gw.brokerStates() });
    else if (m.type === 'sluice:registrations-changed')
      gw.registrationsChanged().catch((err: Error) =>
        gw.ctx.log.error({ err: err.message }, 'could not read the registrations another worker changed'),
      );
  });
  // The primary kills these children's groups should this worker be killed outright (-9).
  // (Only while the primary is there: a send on a closed channel throws, and a child reaped during
  // the shutdown below would then never be accounted for, leaving the shutdown hung.)
  const tell = (m: Msg): void => void (process.connected && process.send?.(m));
  childLifecycle.spawned = (pid) => tell({ type: 'sluice:child', pid, alive: true });
  childLifecycle.reaped = (pid) => tell({ type: 'sluice:child', pid, alive: false });
  // The primary gone (killed): nothing restarts or drains this worker any more. It drains and
  // exits by itself, and never outlives its drain by long whatever hangs (a shared listener whose
  // close the dead primary would have confirmed).
  // First, before Node's own cluster handler, which would exit at once on an unexpected
  // disconnect: its stdio children (own process groups) would outlive it, and its exit would hang
  // flushing the log to the primary's dead pipe.
  process.prependListener('disconnect', () => {
    if (cluster.worker) cluster.worker.exitedAfterDisconnect = true;
    // Its log went to the primary (a silent fork): nobody reads it now.
    muteLog(gw.ctx.log);
    gw.ctx.access = undefined;
    const { drain } = gw.ctx.config.shutdown;
    const hardStop = drain + Math.max(...gw.ctx.config.routes.map((r) => r.stdio?.killGrace ?? 0), 0) + 5_000;
    setTimeout(() => process.exit(1), hardStop).unref();
    void gw.shutdown().finally(() => process.exit(0));
  });
}

/** The facts a worker reports once it listens: its process name and socket, and the addresses. */
export function announceWorker(gw: Gateway, process_: string, socket: string): void {
  process.send?.({ type: 'sluice:up', process: process_, socket, addresses: gw.addresses });
}

interface Running {
  worker: Worker;
  id: number;
  startedAt: number;
  /** Its stdio children (each the leader of its process group), as it reported them. */
  children: Set<number>;
  process?: string;
  socket?: string;
}

export interface PrimaryOptions {
  config: Config;
  workers: number;
  log: Logger;
  /** Said once every worker listens (the addresses the first worker bound, and the admin address). */
  listening: (addresses: AddressInfo[], admin: AddressInfo | undefined) => void;
}

export async function runPrimary(opts: PrimaryOptions): Promise<void> {
  const { config, log, workers: n } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-workers-'));
  const env: Record<string, string> = { SLUICE_WORKER_DIR: dir };
  if (config.sessions.keys.length === 0 && !process.env['SLUICE_SESSION_KEYS']?.trim()) {
    log.warn('no session keys configured: generated one for all workers; sessions will not survive a restart');
    env['SLUICE_SESSION_KEYS'] = newKeyText();
  }
  if (!config.logging.hashKey && !process.env['SLUICE_LOG_HASH_KEY'])
    env['SLUICE_LOG_HASH_KEY'] = randomBytes(32).toString('base64url');
  const running = new Map<number, Running>();
  const metrics = new PrimaryMetrics(running);
  let stopping = false;
  let restarts = 0;
  /** When each recent restart happened (the restart budget's window). */
  const recent: number[] = [];
  let nextAsk = 1;
  const asks = new Map<number, (m: Msg) => void>();

  const broadcast = (): void => {
    const all: Record<string, string> = {};
    for (const r of running.values()) if (r.process && r.socket) all[r.process] = r.socket;
    for (const r of running.values()) if (r.worker.isConnected()) r.worker.send({ type: 'sluice:peers', all });
  };
  let announced = false;
  let admin: Server | undefined;
  // Each worker's stdout and stderr come through the primary whole lines at a time: two workers
  // writing JSON lines straight to one pipe could interleave within a line under load.
  cluster.setupPrimary({ silent: true });
  // Through the primary's own log stream: a second writer on fd 1 (process.stdout) would make the
  // descriptor non-blocking under pino's writes.
  const toLog = accessWriter(log);
  const stdout = toLog ?? ((text: string) => void process.stdout.write(text));
  const fork = (id: number): void => {
    const worker = cluster.fork({ ...env, SLUICE_WORKER_ID: String(id) });
    wholeLines(worker.process.stdout, stdout);
    wholeLines(worker.process.stderr, (text) => process.stderr.write(text));
    const r: Running = { worker, id, startedAt: Date.now(), children: new Set() };
    running.set(id, r);
    worker.on('message', (m: Msg) => {
      if (m.type === 'sluice:up') {
        r.process = m['process'] as string;
        r.socket = m['socket'] as string;
        log.info({ worker: id, pid: worker.process.pid }, 'worker listening');
        broadcast();
        if (!announced && [...running.values()].filter((x) => x.socket).length === n) {
          announced = true;
          opts.listening(m['addresses'] as AddressInfo[], admin?.address() as AddressInfo | undefined);
        }
      } else if (m.type === 'sluice:child' && typeof m['pid'] === 'number') {
        if (m['alive']) r.children.add(m['pid']);
        else r.children.delete(m['pid']);
      } else if (m.id !== undefined) asks.get(m.id)?.(m);
    });
    worker.on('exit', (code, signal) => {
      running.delete(id);
      if (r.socket) rmSync(r.socket, { force: true });
      if (r.socket) rmSync(r.socket.replace(/\.sock$/, '.admin.sock'), { force: true });
      // What a worker killed outright left running: its children's process groups.
      if (r.children.size > 0) {
        for (const pid of r.children) killGroup(pid);
        log.warn({ worker: id, children: r.children.size }, 'stopped the stdio children the worker left');
      }
      broadcast();
      if (stopping) return;
      restarts++;
      metrics.restarted(id);
      const now = Date.now();
      recent.push(now);
      while (recent.length > 0 && (recent[0] as number) < now - RESTART_WINDOW_MS) recent.shift();
      if (recent.length > RESTART_BUDGET) {
        log.error(
          { worker: id, code, signal, restarts: recent.length, withinMs: RESTART_WINDOW_MS },
          'workers keep dying; giving up (restart budget spent)',
        );
        stop('restart budget spent', 1);
        return;
      }
      // A worker that dies at once is not restarted in a tight loop. The timer holds the primary
      // open: with every worker gone at once nothing else would, and it would exit 0.
      const wait = now - r.startedAt < 10_000 ? 1_000 : 0;
      log.error({ worker: id, code, signal, restartInMs: wait }, 'worker exited; starting a new one');
      setTimeout(() => !stopping && fork(id), wait);
    });
  };

  /** Ask every worker; the answers that come within a second. */
  const askAll = (type: string): Promise<Msg[]> =>
    Promise.all(
      [...running.values()].map(
        (r) =>
          new Promise<Msg | undefined>((resolve) => {
            const id = nextAsk++;
            const timer = setTimeout(() => {
              asks.delete(id);
              resolve(undefined);
            }, 1_000);
            asks.set(id, (m) => {
              clearTimeout(timer);
              asks.delete(id);
              resolve({ ...m, worker: r.id });
            });
            if (r.worker.isConnected()) r.worker.send({ type, id });
          }),
      ),
    ).then((all) => all.filter((m): m is Msg => m !== undefined));

  if (config.admin.listen) {
    const token = config.admin.token || process.env['SLUICE_ADMIN_TOKEN'] || '';
    const aggregator = new AggregatorRegistry();
    const guesses = new GuessThrottle();
    const policy = listenerPolicy(config.admin.listen);
    admin = createServer((req, res) => {
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      const path = (req.url ?? '').split('?')[0];
      // The DNS-rebinding defence of every listener: a web page must not reach the admin API.
      if (!hostAllowed(policy, req.headers.host) || !originAllowed(policy, req.headers.origin, req.headers.host, [])) {
        log.warn({ security: 'admin-host-origin-rejected' }, 'admin request refused: Host or Origin not allowed');
        return send(403, { error: { code: 'forbidden', message: 'Host or Origin not allowed' } });
      }
      void (async () => {
        if (path === '/healthz') return send(200, { status: 'ok', workers: running.size });
        if (path === '/readyz') {
          const answers = await askAll('sluice:ready?');
          const problems = answers.flatMap((a) =>
            (a['problems'] as string[]).map((p) => `worker ${a['worker']}: ${p}`),
          );
          if (answers.length < n) problems.push(`${answers.length} of ${n} workers answered`);
          if (stopping) problems.push('shutting down');
          return problems.length ? send(503, { status: 'not ready', problems }) : send(200, { status: 'ready' });
        }
        if (path === '/metrics') {
          const text = `${await aggregator.clusterMetrics()}\n${await metrics.registry.metrics()}`;
          res.writeHead(200, { 'content-type': aggregator.contentType, 'cache-control': 'no-store' });
          return void res.end(text);
        }
        // The admin page is one worker's view (it says which); the worker checks its sign-in itself.
        if (path === '/ui' || path?.startsWith('/ui/')) {
          const first = [...running.values()].find((r) => r.socket);
          if (!first?.socket) return send(503, { error: { code: 'unavailable', message: 'no worker is running' } });
          return void (await handToWorker(req, res, first.socket.replace(/\.sock$/, '.admin.sock')));
        }
        // Guesses at the token are throttled per address, as a single process's admin listener does.
        const wait = guesses.wait('bearer', req.socket.remoteAddress);
        if (wait > 0) {
          res.setHeader('retry-after', String(wait));
          return send(429, { error: { code: 'too_many_guesses', message: 'too many wrong tokens from this address' } });
        }
        if (!token || !tokenMatches(req.headers.authorization, token)) {
          if (token) guesses.failed('bearer', req.socket.remoteAddress);
          return send(token ? 401 : 404, { error: { code: token ? 'unauthorized' : 'not_found' } });
        }
        if (path === '/admin/federation') {
          const answers = await askAll('sluice:federation?');
          return send(200, { workers: answers.map((a) => ({ worker: a['worker'], routes: a['routes'] })) });
        }
        // The registration API runs in one worker (it writes the file); the others read it again.
        const owner = [...running.values()].find((r) => r.socket);
        if (!owner?.socket) return send(503, { error: { code: 'unavailable', message: 'no worker is running' } });
        const changed = await handToWorker(req, res, owner.socket.replace(/\.sock$/, '.admin.sock'));
        if (changed)
          for (const r of running.values())
            if (r !== owner && r.worker.isConnected()) r.worker.send({ type: 'sluice:registrations-changed' });
      })().catch((err: Error) => send(500, { error: { code: 'internal', message: err.message } }));
    });
    const a = config.admin.listen;
    await new Promise<void>((resolve, reject) => {
      admin!.once('error', reject);
      admin!.listen(a.port, a.host, () => resolve());
    });
  }
  for (let i = 1; i <= n; i++) fork(i);
  log.info({ workers: n }, 'started workers');

  process.on('SIGHUP', () => {
    for (const r of running.values()) r.worker.process.kill('SIGHUP');
  });
  function stop(sig: string, exitCode = 0): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig, workers: running.size }, 'shutting down the workers');
    for (const r of running.values()) r.worker.process.kill('SIGTERM');
    const deadline = setTimeout(() => {
      for (const r of running.values()) r.worker.process.kill('SIGKILL');
    }, config.shutdown.drain + 15_000);
    const done = (): void => {
      clearTimeout(deadline);
      admin?.close();
      rmSync(dir, { recursive: true, force: true });
      log.info({ restarts }, 'all workers stopped');
      log.flush?.();
      process.exit(exitCode);
    };
    if (running.size === 0) done();
    else cluster.on('exit', () => running.size === 0 && done());
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const MAX_ADMIN_BODY = 1024 * 1024;

/** SIGKILL to a process group a dead worker's child led (and to the leader, should the group be gone). */
function killGroup(pid: number): void {
  for (const target of [-pid, pid])
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
}

/**
 * An admin request, as it came, to a worker's admin socket; true when it changed something (2xx,
 * not GET). The answer is streamed back as it comes (the admin page's event stream lives for hours).
 */
async function handToWorker(req: IncomingMessage, res: ServerResponse, socket: string): Promise<boolean> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_ADMIN_BODY) {
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":{"code":"too_large"}}');
      return false;
    }
    chunks.push(c);
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined && !['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k))
      headers[k] = v;
  const agent = new Agent({ connect: { socketPath: socket } });
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  try {
    const answer = await request(`http://sluice-worker${req.url ?? '/'}`, {
      method: (req.method ?? 'GET') as never,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : null,
      dispatcher: agent,
      signal: gone.signal,
    });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && k !== 'connection') out[k] = v;
    res.writeHead(answer.statusCode, out);
    res.flushHeaders();
    for await (const c of answer.body) res.write(c);
    res.end();
    return req.method !== 'GET' && req.method !== 'HEAD' && answer.statusCode >= 200 && answer.statusCode < 300;
  } catch (err) {
    if (gone.signal.aborted) return false;
    if (!res.headersSent) throw err;
    res.destroy();
    return false;
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** Copies `from` to `to` up to each last newline, so a line is written in one piece. */
function wholeLines(from: Readable | null, to: (text: string) => void): void {
  let rest = '';
  from?.setEncoding('utf8');
  from?.on('data', (chunk: string) => {
    const text = rest + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    rest = text.slice(cut);
    if (cut > 0) to(text.slice(0, cut));
  });
  from?.on('end', () => rest && to(`${rest}\n`));
}

/** The primary's own figures: each worker's process (from /proc) and the restarts. */
class PrimaryMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<'worker'>;

  constructor(running: ReadonlyMap<number, Running>) {
    const registers = [this.registry];
    this.restarts = new Counter({
      name: 'sluice_worker_restarts_total',
      help: 'Workers that exited and were started again, by worker number.',
      labelNames: ['worker'],
      registers,
    });
    const perWorker = (read: (pid: number) => number | undefined) =>
      function (this: Gauge<'worker'>) {
        this.reset();
        for (const r of running.values()) {
          const v = r.worker.process.pid === undefined ? undefined : read(r.worker.process.pid);
          if (v !== undefined) this.set({ worker: String(r.id) }, v);
        }
      };
    new Gauge({
      name: 'sluice_workers',
      help: 'Worker processes running now.',
      registers,
      collect() {
        this.set(running.size);
      },
    });
    new Gauge({
      name: 'sluice_worker_resident_memory_bytes',
      help: 'Resident memory of each worker process (from /proc), by worker number.',
      labelNames: ['worker'],
      registers,
      collect: perWorker((pid) => procStat(pid)?.rss),
    });
    new Gauge({
      name: 'sluice_worker_cpu_seconds',
      help: 'CPU time (user + system) each worker process has used (from /proc), by worker number.',
      labelNames: ['worker'],
      registers,
      collect: perWorker((pid) => procStat(pid)?.cpu),
    });
  }

  restarted(id: number): void {
    this.restarts.inc({ worker: String(id) });
  }
}

const TICKS = 100;
const PAGE = 4096;

function procStat(pid: number): { rss: number; cpu: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { cpu: (Number(f[11]) + Number(f[12])) / TICKS, rss: Number(f[21]) * PAGE };
  } catch {
    return undefined;
  }
}
