// A stdio route's broker: the sessions of one route, each with its child, and the HTTP exchanges
// the pipeline hands it once the shared front stages (head, route, Host/Origin, CORS, auth, body,
// classification, policy) have passed. A new session (an initialize) spawns a child, within
// maxProcesses; a known one is served by its own transport; a session that ends (DELETE, idle,
// its child exiting, shutdown, the route reloaded away) stops its child's process group and is
// forgotten, so its next request gets 404 and the client starts again.
import { randomUUID } from 'node:crypto';
import { WebStandardStreamableHTTPServerTransport, type RequestId } from '@modelcontextprotocol/server';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import type { RouteConfig, StdioConfig } from '../config/schema.ts';
import type { BrokerCloseReason, BrokerState, RouteBroker } from '../core/route-broker.ts';
import type { Route } from '../routing/route-table.ts';
import { SluiceError } from '../core/errors.ts';
import { H } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import { seal } from '../session/token.ts';
import { callerKey, PROCESS } from './bridge-common.ts';
import { perCallerShare, ProcessSlots } from './process-slots.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { EventBuffer } from '../core/event-buffer.ts';
import { isInitialize, parsedBody, webRequest, writeWebResponse, type BrokerExchange } from './web-exchange.ts';
import { StdioSession, type SessionEnd } from './stdio-session.ts';
import type { BridgeMetrics } from './bridge-common.ts';
import { ModernFront } from './modern-front.ts';
import { discoverUpstream, type Discovery, type UpstreamEndpoint } from './upstream-link.ts';
import type { BridgingConfig } from '../config/schema.ts';

export type { BrokerExchange };

export interface BrokerDeps {
  log: Logger;
  /** Read at each new session: the ring may be replaced by a reload. */
  sessions: () => KeyRing;
  maxLine: number;
  keepAliveMs: number;
  /** Read when used: the metrics exist only with an admin listener. */
  metrics: () => BrokerMetrics | undefined;
  bridging: () => BridgingConfig;
}

export interface BrokerMetrics extends BridgeMetrics {
  childSpawned(route: string): void;
  childExited(route: string, cause: string): void;
  childrenRunning(route: string, n: number): void;
}

export class StdioBroker implements RouteBroker {
  readonly kind = 'stdio';
  readonly path: string;
  /** The public prefix ('' for the root route): HTTP+SSE endpoints are named below it. */
  private readonly prefix: string;
  private cfg: StdioConfig;
  private readonly bridge: 'auto' | 'off';
  private readonly deps: BrokerDeps;
  private readonly log: Logger;
  private readonly live = new Map<string, StdioSession>();
  /** Children of ended sessions still being stopped: shutdown waits for them too. */
  private readonly stopping = new Set<StdioSession['child']>();
  private readonly sweeper: NodeJS.Timeout;
  /** Every child of this route, whatever it serves, counted until reaped (maxProcesses). */
  private readonly slots: ProcessSlots;
  private closed = false;
  /** For 2026-07-28 clients: what the stdio server is (found once), and the front that bridges them. */
  private found: Promise<Discovery> | undefined;
  private modern: ModernFront | undefined;

  constructor(route: RouteConfig, deps: BrokerDeps) {
    if (!route.stdio) throw new Error(`route ${route.path} has no stdio upstream`);
    this.path = route.path;
    this.prefix = route.path === '/' ? '' : route.path.replace(/\/+$/, '');
    this.cfg = route.stdio;
    this.bridge = route.bridge ?? 'auto';
    this.deps = deps;
    this.log = deps.log.child({ route: route.path, broker: 'stdio' });
    this.slots = new ProcessSlots(this.cfg.maxProcesses, perCallerShare(this.cfg), `route ${route.path}`);
    this.sweeper = setInterval(this.sweep, Math.max(250, Math.min(this.cfg.idleTimeout / 4, 5000)));
    this.sweeper.unref();
  }

  /** Children alive now: sessions', the bridge's pooled ones, the era probe's, and those still stopping. */
  get running(): number {
    return this.slots.running;
  }

  processes(): { running: number; max: number } {
    return { running: this.slots.running, max: this.cfg.maxProcesses };
  }

  state(): BrokerState {
    return { kind: 'stdio', route: this.path, sessions: this.live.size, processes: this.processes() };
  }

  /** The same command and settings: a reload keeps this broker and its sessions. */
  keep(route: Route): boolean {
    const r = route.config;
    return JSON.stringify(r.stdio) === JSON.stringify(this.cfg) && (r.bridge ?? 'auto') === this.bridge;
  }

  handle(ex: BrokerExchange): Promise<void> {
    ex.handedOff = true;
    return this.serveExchange(ex);
  }

  private async serveExchange(ex: BrokerExchange): Promise<void> {
    if (this.closed) throw new SluiceError('SLUICE_ERR_SHUTTING_DOWN');
    // 2026-07-28 clients are stateless: bridged onto pooled stdio sessions (modern-front.ts).
    if (ex.era === 'stateless' && this.bridge !== 'off') return this.bridged(ex);
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    const parsed = parsedBody(ex);
    // HTTP+SSE (2024-11-05): GET <route>/sse opens a session and its stream; its POSTs go to
    // <route>/messages?sessionId=… (the endpoint event names it).
    if (token === undefined && ex.req.method === 'GET' && ex.routeRest === '/sse') return this.openSse(ex);
    const sseId = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    if (token === undefined && ex.req.method === 'POST' && sseId !== null) return this.postSse(ex, sseId, parsed);
    let session: StdioSession | undefined;
    if (token !== undefined) {
      session = this.live.get(token);
      if (!session || session.over || session.principal !== ex.principal?.key)
        throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no such session on this route (it ended, or never was)');
    } else if (ex.req.method === 'POST' && isInitialize(parsed)) {
      session = await this.open(ex);
    } else {
      throw new SluiceError(
        'SLUICE_ERR_BAD_REQUEST',
        'a stdio route serves sessions: start with initialize (no Mcp-Session-Id), then send its Mcp-Session-Id',
      );
    }
    ex.brokerUpstream = `stdio:${this.cfg.command}#${session.child.pid ?? '?'}`;
    await this.serve(session, ex, parsed);
  }

  private async bridged(ex: BrokerExchange): Promise<void> {
    this.found ??= discoverUpstream(this.endpoint(undefined), this.deps.bridging().discoverTimeout);
    let found: Discovery;
    try {
      found = await this.found;
    } catch (err) {
      this.found = undefined;
      // No slot for the probe (maxProcesses): the capacity refusal as it is, a 503 to retry.
      if (err instanceof SluiceError) throw err;
      throw new SluiceError(
        'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
        `the stdio server did not answer initialize: ${(err as Error).message}`,
      );
    }
    this.modern ??= new ModernFront(this.path, (e) => this.endpoint(callerKey(e)), found, {
      log: this.deps.log,
      sessions: this.deps.sessions,
      keepAliveMs: this.deps.keepAliveMs,
      limits: {
        ...this.deps.bridging(),
        maxSessions: Math.min(this.deps.bridging().maxSessions, this.cfg.maxProcesses),
      },
      metrics: this.deps.metrics,
    });
    ex.brokerUpstream = `stdio:${this.cfg.command} (bridged 2026-07-28→2025)`;
    const parsed = parsedBody(ex);
    await this.modern.handle(ex, parsed);
  }

  /** The stdio server as the bridge reaches it: a child counted for `caller` in the route's one process count. */
  private endpoint(caller: string | undefined): UpstreamEndpoint {
    return { kind: 'stdio', cfg: this.cfg, log: this.log, maxLine: this.deps.maxLine, slots: this.slots, caller };
  }

  private async openSse(ex: BrokerExchange): Promise<void> {
    const { res } = ex;
    const endpoint = `${this.prefix}/messages`;
    let sse: SSEServerTransport | undefined;
    const session = await this.open(
      ex,
      (s) => {
        sse = new SSEServerTransport(endpoint, res);
        sse.onclose = () => s.end({ cause: 'deleted', detail: 'the client closed its HTTP+SSE stream' });
        return sse;
      },
      () => (sse as SSEServerTransport).sessionId,
    );
    ex.brokerUpstream = `stdio:${this.cfg.command}#${session.child.pid ?? '?'}`;
    session.active++;
    res.once('close', () => {
      session.active--;
      session.end({ cause: 'deleted', detail: 'the client closed its HTTP+SSE stream' });
    });
    await (sse as SSEServerTransport).start();
  }

  /** Whether `ex` names one of this process's sessions (its token or HTTP+SSE id). */
  owns(ex: BrokerExchange): boolean {
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    if (token !== undefined) return this.live.has(token);
    const sse = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    return sse !== null && this.live.has(sse);
  }

  private async postSse(ex: BrokerExchange, id: string, parsed: unknown): Promise<void> {
    const session = this.live.get(id);
    if (!session || session.over || session.principal !== ex.principal?.key)
      throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no such HTTP+SSE session on this route');
    ex.brokerUpstream = `stdio:${this.cfg.command}#${session.child.pid ?? '?'}`;
    session.lastActivity = Date.now();
    await session.whenChildReads(this.cfg.stdinWait, () =>
      (session.transport as SSEServerTransport).handlePostMessage(ex.req, ex.res, parsed),
    );
  }

  /** A Streamable HTTP session: the SDK v2 server transport, with this session's token and event buffer. */
  private streamable(token: string): (s: StdioSession) => WebStandardStreamableHTTPServerTransport {
    return (s) => {
      const t = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => token,
        eventStore: new EventBuffer(),
        keepAliveMs: this.deps.keepAliveMs,
        onsessionclosed: () => s.end({ cause: 'deleted', detail: 'the client ended the session (DELETE)' }),
      });
      t.onerror = (err) => this.log.debug({ err: err.message }, 'broker transport');
      return t;
    };
  }

  private async open(
    ex: BrokerExchange,
    transport?: (s: StdioSession) => SSEServerTransport,
    sseId?: () => string,
  ): Promise<StdioSession> {
    const slot = this.slots.take(callerKey(ex));
    const token = seal(this.deps.sessions(), {
      kind: 'session',
      route: this.path,
      replica: PROCESS,
      value: randomUUID(),
      principal: undefined,
      issuedAt: Math.floor(Date.now() / 1000),
    });
    const session: StdioSession = new StdioSession(
      this.cfg,
      {
        token,
        principal: ex.principal?.key,
        log: this.log,
        maxLine: this.deps.maxLine,
        slot,
        onEnd: (end) => this.ended(session, end),
      },
      transport ?? this.streamable(token),
    );
    // An HTTP+SSE session is found by the transport's own sessionId (the POST URL's query).
    this.live.set(sseId ? sseId() : token, session);
    this.deps.metrics()?.childSpawned(this.path);
    this.deps.metrics()?.childrenRunning(this.path, this.live.size);
    try {
      await session.child.ready;
    } catch {
      // ended() has logged the cause; the client hears it in plain words.
      throw new SluiceError(
        'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
        `the stdio server could not be started: ${session.endDetail}`,
      );
    }
    this.log.info({ pid: session.child.pid, command: this.cfg.command }, 'stdio session started');
    if (!transport) await (session.transport as WebStandardStreamableHTTPServerTransport).start();
    return session;
  }

  private ended(session: StdioSession, end: SessionEnd): void {
    for (const [k, v] of this.live) if (v === session) this.live.delete(k);
    const child = session.child;
    if (child.running) {
      this.stopping.add(child);
      void child.gone.then(() => this.stopping.delete(child));
    }
    this.deps.metrics()?.childExited(this.path, end.cause);
    this.deps.metrics()?.childrenRunning(this.path, this.live.size);
    const level =
      end.cause === 'crashed' ||
      end.cause === 'spawn-failed' ||
      end.cause === 'flooded' ||
      end.cause === 'oversized-line'
        ? 'warn'
        : 'info';
    this.log[level]({ pid: session.child.pid, cause: end.cause, detail: end.detail }, 'stdio session ended');
  }

  private async serve(session: StdioSession, ex: BrokerExchange, parsed: unknown): Promise<void> {
    const { req, res } = ex;
    session.active++;
    session.lastActivity = Date.now();
    const done = new AbortController();
    // At the exchange's deadline the child stops the call; the hand-off answers 504 when nothing was sent yet.
    const id = (parsed as { id?: unknown; method?: unknown } | undefined)?.id;
    const expiry =
      ex.deadline !== undefined && isRequest(parsed)
        ? setTimeout(
            () => session.expire(id as RequestId, res.writableEnded || !res.headersSent),
            ex.deadline - Date.now(),
          )
        : undefined;
    res.once('close', () => {
      clearTimeout(expiry);
      session.active--;
      session.lastActivity = Date.now();
      done.abort();
    });
    const answer = await session.whenChildReads(this.cfg.stdinWait, () =>
      (session.transport as WebStandardStreamableHTTPServerTransport).handleRequest(
        webRequest(req, done.signal),
        parsed === undefined ? {} : { parsedBody: parsed },
      ),
    );
    // The child could not be started: the client hears why, not an initialize that never answers.
    if (!session.child.running && answer.status < 300 && req.method === 'POST' && isInitialize(parsed)) {
      void answer.body?.cancel();
      throw new SluiceError(
        'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
        `the stdio server could not be started (${this.cfg.command})`,
      );
    }
    const sid = answer.headers.get(H.sessionId);
    if (sid) ex.responseSessionId = sid;
    writeWebResponse(ex, answer);
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    for (const s of this.live.values())
      if (s.active === 0 && now - s.lastActivity >= this.cfg.idleTimeout)
        s.end({ cause: 'idle', detail: `no request and no open stream for ${this.cfg.idleTimeout} ms (idleTimeout)` });
  };

  /** Ends every session (shutdown, or the route reloaded away); resolves when the children are gone. */
  async close(reason: BrokerCloseReason, _deadline: number): Promise<void> {
    const cause: SessionEnd['cause'] = reason;
    this.closed = true;
    clearInterval(this.sweeper);
    await this.modern?.close();
    for (const s of [...this.live.values()])
      s.end({ cause, detail: cause === 'shutdown' ? 'Sluice is stopping' : 'the route was removed' });
    // Each child is SIGKILLed at killGrace at the latest; its exit (reaped) follows.
    await Promise.all([...this.stopping].map((c) => c.gone));
  }
}

/** A JSON-RPC request (a method and an id): it has an answer that can be late. */
function isRequest(m: unknown): boolean {
  const r = m as { id?: unknown; method?: unknown } | undefined;
  return typeof r?.method === 'string' && (typeof r.id === 'string' || typeof r.id === 'number');
}
