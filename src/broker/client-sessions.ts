// The one keeper of the 2025-era client sessions Sluice mints as a server, on every broker route:
// a stdio route's sessions (each a child), a bridged 2026-07-28-only upstream's and a federated
// route's (each an SDK v2 Server). Sessionful Streamable HTTP (Sluice mints the session, a sealed
// token naming this process) and HTTP+SSE (`<path>/sse` and its `/messages`), on the SDK's own
// server transports. What a session serves comes from the hooks; this part keeps them: the one
// owner rule (the caller's principal, or for an anonymous caller the session itself), the one
// token mint, the bound on their number, the idle sweep, the 400/404 answers and the ends.
import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/server';
import { WebStandardStreamableHTTPServerTransport, type Transport } from '@modelcontextprotocol/server';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { SluiceError } from '../core/errors.ts';
import { EventBuffer } from '../core/event-buffer.ts';
import { H } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { seal } from '../session/token.ts';
import { callerKey, isAnonymous } from './bridge-common.ts';
import { ownerTag } from './instance.ts';
import { isInitialize, webRequest, writeWebResponse, type BrokerExchange } from './web-exchange.ts';

/** What every 2025 client session has; a broker's own session type adds what it serves with. */
export interface ClientSession {
  /** The SDK server that answers it (bridged, federated); undefined when its hooks attach it (a stdio child). */
  readonly server?: Server | undefined;
  /** The caller it belongs to (bridge-common callerKey): another caller's request for it is a 404. */
  readonly principal: string;
  transport?: WebStandardStreamableHTTPServerTransport | SSEServerTransport | undefined;
  active: number;
  lastActivity: number;
  over: boolean;
  /** The client's GET (standalone) stream opened or closed: what waits for it may go out. */
  standaloneOpened?(): void;
  standaloneClosed?(): void;
}

/** Why a session ended: its client, idleness, Sluice, a reload, or what serves it. */
export type SessionEndCause = 'deleted' | 'idle' | 'shutdown' | 'route-removed' | 'closed';

export interface ClientSessionHooks<S extends ClientSession> {
  /** The session a new caller's initialize (or HTTP+SSE stream) opens; may refuse with a SluiceError. */
  create(principal: string, ex: BrokerExchange): S | Promise<S>;
  /** A session without a server: its transport is connected to what serves it (a stdio child). */
  attach?(s: S, transport: WebStandardStreamableHTTPServerTransport | SSEServerTransport): Promise<void>;
  /** Wraps a request's delivery to the session (stdio: its child's stdin backpressure and the deadline). */
  deliver?<T>(s: S, ex: BrokerExchange, parsed: unknown, run: () => Promise<T>): Promise<T>;
  /** A request of `s` is being served (stdio: the access log names the child). */
  served?(s: S, ex: BrokerExchange): void;
  /** Looks at an answer before it is written; may throw a SluiceError instead (stdio: a child that could not start). */
  check?(s: S, ex: BrokerExchange, parsed: unknown, answer: Response): void;
  /** The session ended (its server is closed here): release what it holds. */
  ended(s: S, why: string, cause: SessionEndCause): void;
  /** Sessions open now (for the metrics). */
  count(n: number): void;
}

export interface ClientSessionLimits {
  maxSessions: number;
  sessionIdle: number;
}

export class ClientSessions<S extends ClientSession> {
  private readonly route: string;
  private readonly prefix: string;
  private readonly keys: () => KeyRing;
  private readonly keepAliveMs: number;
  private readonly limits: () => ClientSessionLimits;
  private readonly hooks: ClientSessionHooks<S>;
  private readonly log: Logger;
  private readonly live = new Map<string, S>();
  /** Sessions whose transport is connected to what serves them. */
  private readonly attached = new WeakSet<S>();
  /** Closed (shutdown, the route removed): no new session, no request served. */
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly what: { serves: string; limit: string };

  constructor(
    route: string,
    deps: { sessions: () => KeyRing; keepAliveMs: number; limits: () => ClientSessionLimits; log: Logger },
    hooks: ClientSessionHooks<S>,
    /** For errors: what the route serves ("bridged to …") and the setting that bounds the sessions. */
    what: { serves: string; limit: string },
  ) {
    this.route = route;
    this.prefix = route === '/' ? '' : route.replace(/\/+$/, '');
    this.keys = deps.sessions;
    this.keepAliveMs = deps.keepAliveMs;
    this.limits = deps.limits;
    this.hooks = hooks;
    this.log = deps.log;
    this.what = what;
  }

  get size(): number {
    return this.live.size;
  }

  values(): IterableIterator<S> {
    return this.live.values();
  }

  /** Whether `ex` belongs to one of these sessions (its token or HTTP+SSE id). */
  owns(ex: BrokerExchange): boolean {
    const token = sessionHeader(ex);
    if (token !== undefined) return this.live.has(token);
    const sse = sseSessionId(ex);
    return sse !== null && this.live.has(sse);
  }

  async handle(ex: BrokerExchange, parsed: unknown): Promise<void> {
    if (this.closed) throw new SluiceError('SLUICE_ERR_SHUTTING_DOWN');
    const token = sessionHeader(ex);
    const pk = callerKey(ex);
    if (token === undefined && ex.req.method === 'GET' && ex.routeRest === '/sse') return this.openSse(ex, pk);
    const sseId = sseSessionId(ex);
    if (token === undefined && sseId !== null) {
      const s = this.session(sseId, pk);
      s.lastActivity = Date.now();
      this.hooks.served?.(s, ex);
      const post = (): Promise<void> => (s.transport as SSEServerTransport).handlePostMessage(ex.req, ex.res, parsed);
      await (this.hooks.deliver ? this.hooks.deliver(s, ex, parsed, post) : post());
      return;
    }
    let s: S;
    if (token !== undefined) s = this.session(token, pk);
    else if (ex.req.method === 'POST' && isInitialize(parsed)) s = await this.open(pk, ex, (x) => this.streamable(x));
    else
      throw new SluiceError(
        'SLUICE_ERR_BAD_REQUEST',
        `this route serves 2025-era clients ${this.what.serves}: start with initialize (no Mcp-Session-Id), then send its Mcp-Session-Id`,
      );
    await this.serve(s, ex, parsed);
  }

  private session(id: string, pk: string): S {
    const s = this.live.get(id);
    // An anonymous caller's session is owned by its token (the session itself); a principal's by that principal.
    if (!s || s.over || (isAnonymous(s.principal) ? !isAnonymous(pk) : s.principal !== pk))
      throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no such session on this route (it ended, or never was)');
    return s;
  }

  private streamable(s: S): { id: string; transport: WebStandardStreamableHTTPServerTransport } {
    const id = seal(this.keys(), {
      kind: 'session',
      route: this.route,
      replica: ownerTag(),
      value: randomUUID(),
      principal: undefined,
      issuedAt: Math.floor(Date.now() / 1000),
    });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      eventStore: new EventBuffer(),
      keepAliveMs: this.keepAliveMs,
      onsessionclosed: () => this.end(s, 'the client ended the session (DELETE)', 'deleted'),
    });
    transport.onerror = (err) => this.log.debug({ err: err.message }, 'front transport');
    return { id, transport };
  }

  private async open(
    pk: string,
    ex: BrokerExchange,
    make: (s: S) => { id: string; transport: WebStandardStreamableHTTPServerTransport | SSEServerTransport },
  ): Promise<S> {
    const max = this.limits().maxSessions;
    if (this.live.size >= max)
      throw new SluiceError(
        'SLUICE_ERR_BROKER_FULL',
        `route ${this.route}: ${max} sessions open (${this.what.limit})`,
        {
          headers: { 'retry-after': '1' },
        },
      );
    const s = await this.hooks.create(pk, ex);
    if (!this.sweeper) {
      const idle = this.limits().sessionIdle;
      this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(idle / 4, 10_000)));
      this.sweeper.unref();
    }
    if (s.server) s.server.onclose = () => this.end(s, 'the transport closed', 'closed');
    const { id, transport } = make(s);
    s.transport = transport;
    this.live.set(id, s);
    this.hooks.count(this.live.size);
    return s;
  }

  private async openSse(ex: BrokerExchange, pk: string): Promise<void> {
    let sse: SSEServerTransport | undefined;
    const s = await this.open(pk, ex, () => {
      sse = new SSEServerTransport(`${this.prefix}/messages`, ex.res);
      return { id: sse.sessionId, transport: sse };
    });
    this.hooks.served?.(s, ex);
    s.active++;
    ex.res.once('close', () => {
      s.active--;
      this.end(s, 'the client closed its HTTP+SSE stream', 'deleted');
    });
    await this.connect(s, sse as SSEServerTransport);
  }

  /** The session's transport connected to what serves it, once: its SDK server, or its hooks (a child). */
  private async connect(s: S, t: WebStandardStreamableHTTPServerTransport | SSEServerTransport): Promise<void> {
    if (this.attached.has(s)) return;
    this.attached.add(s);
    // The SDK v1 HTTP+SSE transport (v2 has none) speaks the same Transport interface.
    if (s.server) await s.server.connect(t as Transport);
    else await this.hooks.attach?.(s, t);
  }

  private async serve(s: S, ex: BrokerExchange, parsed: unknown): Promise<void> {
    const t = s.transport as WebStandardStreamableHTTPServerTransport;
    await this.connect(s, t);
    this.hooks.served?.(s, ex);
    s.active++;
    s.lastActivity = Date.now();
    const done = new AbortController();
    ex.res.once('close', () => {
      s.active--;
      s.lastActivity = Date.now();
      done.abort();
    });
    const run = (): Promise<Response> =>
      t.handleRequest(webRequest(ex.req, done.signal), parsed === undefined ? {} : { parsedBody: parsed });
    const answer = await (this.hooks.deliver ? this.hooks.deliver(s, ex, parsed, run) : run());
    this.hooks.check?.(s, ex, parsed, answer);
    if (ex.req.method === 'GET' && answer.status === 200) {
      s.standaloneOpened?.();
      ex.res.once('close', () => s.standaloneClosed?.());
    }
    const sid = answer.headers.get(H.sessionId);
    if (sid) ex.responseSessionId = sid;
    writeWebResponse(ex, answer);
  }

  end(s: S, why: string, cause: SessionEndCause = 'closed'): void {
    if (s.over) return;
    s.over = true;
    for (const [k, v] of this.live) if (v === s) this.live.delete(k);
    this.hooks.ended(s, why, cause);
    void s.server?.close().catch(() => undefined);
    this.hooks.count(this.live.size);
    this.log.debug({ why }, 'front session ended');
  }

  private sweep(): void {
    const idle = this.limits().sessionIdle;
    const now = Date.now();
    for (const s of [...this.live.values()])
      if (s.active === 0 && now - s.lastActivity >= idle) this.end(s, `idle for ${idle} ms`, 'idle');
  }

  close(cause: 'shutdown' | 'route-removed' = 'shutdown'): void {
    clearInterval(this.sweeper);
    this.closed = true;
    const why = cause === 'shutdown' ? 'Sluice is stopping' : 'the route was removed';
    for (const s of [...this.live.values()]) this.end(s, why, cause);
  }
}

function sessionHeader(ex: BrokerExchange): string | undefined {
  const raw = ex.req.headers[H.sessionId];
  return Array.isArray(raw) ? raw[0] : raw;
}

function sseSessionId(ex: BrokerExchange): string | null {
  return ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
}
