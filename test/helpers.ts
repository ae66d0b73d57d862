// Shared test plumbing: a gateway on port 0 with its log captured, the demo upstream, and
// small raw-HTTP helpers. Everything listens on 127.0.0.1 only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before } from 'node:test';
import { buildConfig } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { registerDemoV1, registerDemoV2 } from '../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../src/demo/upstream-kit.ts';
import { createLogger } from '../src/observability/logger.ts';
import { startGateway, type Gateway, type GatewayDeps } from '../src/app.ts';
import { openSession } from '../src/session/token.ts';

export interface TestGateway {
  gw: Gateway;
  base: string;
  port: number;
  logs: Record<string, unknown>[];
  rawLog: () => string;
  close(): Promise<void>;
}

export async function startTestGateway(input: Partial<ConfigInput> & Pick<ConfigInput, 'routes'>, deps: GatewayDeps = {}): Promise<TestGateway> {
  const config = buildConfig({ listen: [{ host: '127.0.0.1', port: 0 }], ...input }, 'test');
  let raw = '';
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString('utf8');
      raw += text;
      for (const line of text.split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const gw = await startGateway(config, createLogger('info', sink), deps);
  const port = gw.addresses[0]?.port ?? 0;
  return { gw, port, base: `http://127.0.0.1:${port}`, logs, rawLog: () => raw, close: () => gw.shutdown() };
}

export function startDemoUpstream(opts: { retryInterval?: number } = {}): Promise<UpstreamKit> {
  return startUpstreamKit({ name: 'test-upstream', registerV1: registerDemoV1, registerV2: registerDemoV2, ...opts });
}

export interface FakeUpstream {
  server: Server;
  url: string;
  port: number;
  requests: { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[]; body: Buffer }[];
  close(): Promise<void>;
}

/** A plain node:http upstream whose handler a test writes: for faults and byte-level checks. */
export async function startFakeUpstream(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => unknown, listenPort = 0): Promise<FakeUpstream> {
  const requests: FakeUpstream['requests'] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const body = Buffer.concat(chunks);
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
    await handler(req, res, body);
  });
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One request with node:http (no client-side header normalisation beyond node's own). */
export function send(url: string, opts: { method?: string; headers?: Record<string, string | string[]> | [string, string][]; body?: string | Buffer; path?: string } = {}): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path ?? u.pathname + u.search, headers: opts.headers as Record<string, string>, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Raw bytes on one fresh connection, byte for byte (no client normalises them); resolves with
 * everything the server sent (latin1) once it closes the connection, or `timeoutMs` passed.
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const sock = netConnect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    sock.write(bytes);
  });
}

/** The smallest JSON-RPC success answer, as fake upstreams send it. */
export const RPC_OK = '{"jsonrpc":"2.0","id":1,"result":{}}';

export const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export function rpc(method: string, params: Record<string, unknown> = {}, id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function accessLines(logs: Record<string, unknown>[]): Record<string, unknown>[] {
  return logs.filter((l) => l['msg'] === 'access');
}

/** A free loopback port (listened on, then released). */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A fetch for SDK client transports that breaks the first matching POST response after a few
 * SSE events have arrived, the way a dropped client connection does, and records the
 * Last-Event-ID of every resuming GET.
 */
export function cuttingFetch(matches: (body: string) => boolean, afterEvents = 3): { fetch: typeof fetch; resumedWith: string[]; wasCut: () => boolean } {
  let cut = false;
  const resumedWith: string[] = [];
  const f: typeof fetch = async (input, init) => {
    const lastEventId = new Headers(init?.headers).get('last-event-id');
    if (init?.method === 'GET' && lastEventId) resumedWith.push(lastEventId);
    const res = await fetch(input, init);
    const body = typeof init?.body === 'string' ? init.body : '';
    if (cut || !matches(body) || !res.body) return res;
    cut = true;
    const reader = res.body.getReader();
    let events = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        events += new TextDecoder().decode(value).split('\n\n').length - 1;
        if (events >= afterEvents) {
          await reader.cancel();
          controller.error(new TypeError('network connection lost'));
        }
      },
    });
    return new Response(stream, { status: res.status, headers: res.headers });
  };
  return { fetch: f, resumedWith, wasCut: () => cut };
}

/**
 * Registers before/after hooks in the current describe: the demo upstream, and Sluice in front
 * of it on /mcp. Read `.upstream` / `.sluice` inside tests.
 */
export function demoBehindSluice(): { upstream: UpstreamKit; sluice: TestGateway } {
  const fixture = {} as { upstream: UpstreamKit; sluice: TestGateway };
  before(async () => {
    fixture.upstream = await startDemoUpstream();
    fixture.sluice = await startTestGateway({ routes: [{ path: '/mcp', upstream: fixture.upstream.url }] });
  });
  after(async () => {
    await fixture.sluice.close();
    await fixture.upstream.close();
  });
  return fixture;
}

/** The upstream's own session id behind a Sluice session token (what the client never sees). */
export function upstreamSessionOf(sluice: TestGateway, token: string | undefined): string {
  const claims = token ? openSession(sluice.gw.ctx.sessions, token) : undefined;
  if (!claims) throw new Error(`not a session token of this gateway: ${token}`);
  return claims.upstreamSession;
}

export interface SluiceProcess {
  child: ChildProcess;
  /** What it printed on stdout so far (the JSON log lines). */
  stdout: () => string;
  /** What it printed on stderr so far (the banner). */
  stderr: () => string;
  /** SIGTERM, and the exit code. */
  stop: () => Promise<number | null>;
}

/** Runs `sluice ARGS` as a user would; resolves once its stderr shows `ready` (the banner). */
export function spawnSluice(args: string[], ready: string, env: NodeJS.ProcessEnv = process.env): Promise<SluiceProcess> {
  return spawnUntil(process.execPath, [new URL('../bin/sluice.js', import.meta.url).pathname, ...args], ready, env);
}

/** Runs PROGRAM ARGS; resolves once its stderr shows `ready`, rejects if it exits first. */
export async function spawnUntil(program: string, args: string[], ready: string | RegExp, env: NodeJS.ProcessEnv = process.env): Promise<SluiceProcess> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (typeof ready === 'string' ? err.includes(ready) : ready.test(err)) resolve();
    });
    child.once('exit', () => reject(new Error(`${program} ${args.join(' ')} exited: ${err}`)));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      // Already gone (exited, or killed by a signal: then exitCode stays null): nothing to wait for.
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return await new Promise<number | null>((r) => child.once('exit', r));
    },
  };
}

export interface ProgramRun {
  /** Exit code; 1 when it was killed or could not start. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs PROGRAM ARGS to its end (bounded by `timeout`), never rejecting: the exit code says how it went. */
export function runProgram(program: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<ProgramRun> {
  return new Promise((resolve) => {
    execFile(program, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeout ?? 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
