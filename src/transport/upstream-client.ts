// The upstream HTTP client: one undici Agent for the whole gateway, driven through its low-level
// dispatch API. Each exchange gets one small handler object, with no AbortController, no
// Readable body and no async iterator: a per-request AbortController plus stream plumbing
// roughly doubled this gateway's CPU per small request (bench/README.md, "What changed"),
// and every such object is held for the life of an idle SSE stream.
// Connections: one undici Client (one socket) per exchange, taken from a per-origin stack of idle
// ones and put back after a clean end. undici's own Pool walks all of its clients on every
// connect and disconnect, which made tearing down 8,000 streams quadratic (seconds of CPU,
// bench/README.md); here every step is O(1), and a cut exchange simply destroys its client.
// Redirects are never followed (dispatch returns 3xx as is), no HTTP(S)_PROXY is consulted, and
// the body timeout is off because Sluice runs its own idle timer that heartbeats coexist with.
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamTls } from '../core/upstream-tls.ts';
import { buildConnector, Client, errors as undiciErrors, type Dispatcher } from 'undici';
import { SluiceError } from '../core/errors.ts';
import { RULE_TEXT, type AddressPolicy } from '../security/address-policy.ts';
import {
  AddressRefused,
  guardedConnector,
  systemResolver,
  type Connector,
  type GuardDeps,
  type Resolver,
} from './guarded-connect.ts';

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  /**
   * undici's own response-header timeout: a backstop only (its timers run up to 0.5 s late); the exchange keeps the
   * exact one.
   */
  headersTimeoutMs: number;
  /** DNS for upstream names; tests inject one so no real lookup is made. */
  resolver?: Resolver;
  /** Opens sockets to judged addresses; tests inject one that dials loopback sentinels. */
  connector?: Connector;
}

export interface UpstreamRequest {
  origin: string;
  /** The address policy of the route: enforced in the connector of every connection. */
  policy: AddressPolicy;
  /** The route's TLS options for https upstreams (undefined: system CAs, verified). */
  tls: UpstreamTls | undefined;
  path: string;
  method: string;
  /** Flat [name, value, name, value, …] list, as undici takes it without another copy. */
  headers: string[];
  body: Buffer | undefined;
}

/** What an exchange hears back. onError receives an error already mapped to the catalogue. */
export interface UpstreamListener {
  onHeaders(statusCode: number, headers: IncomingHttpHeaders): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: unknown): void;
}

/** The exchange's handle on its upstream request. */
export interface UpstreamCall {
  /** Stop the request (before or after headers); the listener then hears nothing more. */
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

class Call implements Dispatcher.DispatchHandler, UpstreamCall {
  private controller: Dispatcher.DispatchController | undefined;
  private aborted: Error | undefined;
  private ended = false;
  private readonly listener: UpstreamListener;
  private readonly pool: ConnectionPool;
  private readonly key: string;
  private readonly client: Client;

  constructor(listener: UpstreamListener, pool: ConnectionPool, key: string, client: Client) {
    this.listener = listener;
    this.pool = pool;
    this.key = key;
    this.client = client;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // undici keeps the raw header Buffers on the controller for the whole response; a stream
    // open for hours needs only the parsed copy it is handed here.
    c.rawHeaders = null;
    if (!this.aborted) this.listener.onHeaders(statusCode, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.aborted) this.listener.onData(chunk);
  }

  onResponseEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.pool.release(this.key, this.client);
    if (!this.aborted) this.listener.onEnd();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.pool.discard(this.client);
    if (!this.aborted) this.listener.onError(classifyUpstreamError(err));
  }

  /** Destroying the exchange's own client stops it wherever it is: queued, connecting or streaming. */
  abort(reason: Error): void {
    if (this.aborted || this.ended) return;
    this.aborted = reason;
    this.ended = true;
    this.pool.discard(this.client, reason);
  }

  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }
}

/** Idle keep-alive clients per policy and origin (a stack, so the warmest connection is reused first). */
class ConnectionPool {
  private readonly idle = new Map<string, Client[]>();
  private readonly live = new Set<Client>();
  private readonly options: Client.Options;
  private readonly maxIdlePerOrigin: number;

  constructor(options: Client.Options, maxIdlePerOrigin: number) {
    this.options = options;
    this.maxIdlePerOrigin = maxIdlePerOrigin;
  }

  acquire(key: string, origin: string, connect: Connector): Client {
    const stack = this.idle.get(key);
    while (stack && stack.length > 0) {
      const c = stack.pop() as Client;
      if (!c.destroyed && !c.closed) return c;
    }
    const c = new Client(origin, { ...this.options, connect });
    this.live.add(c);
    return c;
  }

  release(key: string, c: Client): void {
    if (c.destroyed || c.closed) return void this.live.delete(c);
    let stack = this.idle.get(key);
    if (!stack) this.idle.set(key, (stack = []));
    if (stack.length < this.maxIdlePerOrigin) stack.push(c);
    else this.discard(c);
  }

  discard(c: Client, reason?: Error): void {
    this.live.delete(c);
    if (!c.destroyed) void c.destroy(reason ?? null).catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.live];
    this.live.clear();
    this.idle.clear();
    await Promise.all(all.map((c) => c.destroy().catch(() => undefined)));
  }
}

export class UpstreamClient {
  private readonly pool: ConnectionPool;
  private readonly deps: GuardDeps;
  /** One guarded connector (and pool key) per policy and TLS options: routes keep theirs while unchanged. */
  private readonly guards = new WeakMap<
    AddressPolicy,
    Map<UpstreamTls | undefined, { key: string; connect: Connector }>
  >();
  private nextGuard = 0;
  private readonly connectTimeoutMs: number;

  constructor(opts: UpstreamClientOptions) {
    this.pool = new ConnectionPool(
      {
        headersTimeout: opts.headersTimeoutMs,
        bodyTimeout: 0,
        keepAliveTimeout: 4_000,
        pipelining: 1,
      },
      256,
    );
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.deps = {
      resolver: opts.resolver ?? systemResolver,
      timeoutMs: opts.connectTimeoutMs,
      connector: opts.connector ?? buildConnector({ timeout: opts.connectTimeoutMs }),
    };
  }

  /** The connector that enforces `policy` (with the route's TLS options); health checks use it too. */
  connectorFor(policy: AddressPolicy, tls: UpstreamTls | undefined): Connector {
    return this.guard(policy, tls).connect;
  }

  private guard(policy: AddressPolicy, tls: UpstreamTls | undefined): { key: string; connect: Connector } {
    let byTls = this.guards.get(policy);
    if (!byTls) this.guards.set(policy, (byTls = new Map()));
    let g = byTls.get(tls);
    if (!g) {
      // The route's CA, client certificate, SNI name and verification apply to TLS connections;
      // the address policy still judges every connect first.
      const deps = tls
        ? { ...this.deps, connector: buildConnector({ timeout: this.connectTimeoutMs, ...tls }) }
        : this.deps;
      byTls.set(tls, (g = { key: `${this.nextGuard++}|`, connect: guardedConnector(policy, deps) }));
    }
    return g;
  }

  dispatch(r: UpstreamRequest, listener: UpstreamListener): UpstreamCall {
    const g = this.guard(r.policy, r.tls);
    const key = g.key + r.origin;
    const client = this.pool.acquire(key, r.origin, g.connect);
    const call = new Call(listener, this.pool, key, client);
    try {
      client.dispatch(
        { path: r.path, method: r.method as Dispatcher.HttpMethod, headers: r.headers, body: r.body },
        call,
      );
    } catch (err) {
      queueMicrotask(() => call.onResponseError(undefined, err as Error));
    }
    return call;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** Turn an undici / socket failure into the catalogue: timeouts 504, everything else 502. */
export function classifyUpstreamError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const refused =
    err instanceof AddressRefused
      ? err
      : (err as { cause?: unknown }).cause instanceof AddressRefused
        ? (err as { cause: AddressRefused }).cause
        : undefined;
  if (refused) return new SluiceError('SLUICE_ERR_UPSTREAM_REFUSED', RULE_TEXT[refused.rule], { cause: refused });
  if (err instanceof undiciErrors.ConnectTimeoutError)
    return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'connect timed out', { cause: err });
  const tlsCode = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (tlsCode !== undefined && TLS_CODES.test(tlsCode))
    return new SluiceError('SLUICE_ERR_UPSTREAM_TLS', tlsCode, { cause: err });
  if (err instanceof undiciErrors.HeadersTimeoutError)
    return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no response headers in time', { cause: err });
  // The socket's own errno (ECONNRESET) says more than undici's wrapper code (UND_ERR_SOCKET).
  const own = (err as { code?: string }).code;
  const system = (err as { cause?: { code?: string } }).cause?.code;
  const code = system?.startsWith('E') ? system : (own ?? system);
  return new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', code ? plainReason(code) : (err as Error).message, {
    cause: err,
  });
}

const PLAIN: Record<string, string> = {
  ECONNREFUSED: 'the upstream refused the connection',
  ECONNRESET: 'the upstream reset the connection',
  EPIPE: 'the upstream closed the connection while the request was sent',
  ETIMEDOUT: 'the connection to the upstream timed out',
  EHOSTUNREACH: 'the upstream host is unreachable',
  ENETUNREACH: 'the upstream network is unreachable',
  ENOTFOUND: "the upstream's name was not found",
  EAI_AGAIN: "the upstream's name could not be looked up (temporary)",
  UND_ERR_SOCKET: 'the upstream closed the connection',
  UND_ERR_CLOSED: 'the upstream connection was closed',
  UND_ERR_ABORTED: 'the upstream request was aborted',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: "the upstream's answer did not match its Content-Length",
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'the request did not match its Content-Length',
  UND_ERR_INFO: 'the upstream sent an invalid answer',
};

/** A failure code in plain words, the code kept in parentheses for those who search for it. */
export function plainReason(code: string): string {
  const words =
    PLAIN[code] ??
    (code.startsWith('HPE_')
      ? 'the upstream sent malformed HTTP'
      : code.startsWith('UND_ERR_')
        ? 'the upstream connection failed'
        : 'network error talking to the upstream');
  return `${words} (${code})`;
}

/** Certificate and handshake failures (node's and OpenSSL's codes). */
const TLS_CODES =
  /^(?:CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_|ERR_SSL_|EPROTO$|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE)/;

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * True when the request never reached the upstream (no connection was made), so sending it to
 * another replica cannot run it twice.
 */
export function isConnectFailure(err: unknown): boolean {
  const cause = err instanceof SluiceError ? err.cause : err;
  if (cause instanceof undiciErrors.ConnectTimeoutError) return true;
  const code =
    (cause as { code?: string } | undefined)?.code ?? (cause as { cause?: { code?: string } } | undefined)?.cause?.code;
  return code !== undefined && CONNECT_CODES.has(code);
}
