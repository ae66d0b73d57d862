// 2025-era callers (sessionful Streamable HTTP, and HTTP+SSE) served by a 2026-07-28 upstream.
// Sluice is the 2025 server they see: it answers initialize from the upstream's server/discover,
// mints the session (a sealed token naming this process) and keeps it; each of the caller's
// requests goes upstream as a stateless 2026-07-28 request on an SDK v2 client made for it (the
// per-request _meta envelope, Mcp-Method/Mcp-Name and the Mcp-Param-* headers the tool list's
// x-mcp-header annotations ask for). An input_required answer becomes real requests to the caller
// on the stream of its call, and the call is retried upstream with the answers (the SDK client's
// multi-round-trip driver). The caller's GET stream hears an upstream subscriptions/listen, which
// also carries what resources/subscribe asked for.
import { randomUUID } from 'node:crypto';
import { InMemoryResponseCacheStore, type Client } from '@modelcontextprotocol/client';
import { LOG_LEVEL_META_KEY, Server, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { SluiceError } from '../core/errors.ts';
import { EventBuffer } from '../core/event-buffer.ts';
import { H } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import { seal } from '../session/token.ts';
import { callerKey, forwardCall, PROCESS } from './bridge-common.ts';
import type { FrontDeps } from './modern-front.ts';
import { connectUpstream, type Discovery, type UpstreamEndpoint } from './upstream-link.ts';
import { isInitialize, webRequest, writeWebResponse, type BrokerExchange } from './web-exchange.ts';

type Ctx = {
  mcpReq: {
    _meta?: Record<string, unknown>;
    signal: AbortSignal;
    send: (r: { method: string; params?: Record<string, unknown> }, o?: { signal?: AbortSignal }) => Promise<unknown>;
    notify: (n: { method: string; params?: Record<string, unknown> }) => Promise<void>;
  };
};
type Req = { method: string; params?: Record<string, unknown> };

class BridgedSession {
  readonly server: Server;
  transport: WebStandardStreamableHTTPServerTransport | SSEServerTransport | undefined;
  readonly principal: string;
  readonly cache = new InMemoryResponseCacheStore();
  /** Resource URIs the caller subscribed to: they ride the upstream listen. */
  readonly uris = new Set<string>();
  listen: { client: Client; close(): Promise<void> } | undefined;
  /** The level its logging/setLevel asked for (sent upstream in each request's _meta). */
  logLevel: string | undefined;
  active = 0;
  lastActivity = Date.now();
  over = false;

  /** The upstream as this session's caller reaches it (its credential), from its first request. */
  readonly ep: UpstreamEndpoint;

  constructor(server: Server, principal: string, ep: UpstreamEndpoint) {
    this.server = server;
    this.principal = principal;
    this.ep = ep;
  }
}

export class LegacyFront {
  private readonly route: string;
  private readonly prefix: string;
  private readonly endpointFor: (ex: BrokerExchange) => UpstreamEndpoint;
  private readonly found: Discovery;
  private readonly deps: FrontDeps;
  private readonly log: Logger;
  private readonly live = new Map<string, BridgedSession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(route: string, endpointFor: (ex: BrokerExchange) => UpstreamEndpoint, found: Discovery, deps: FrontDeps) {
    this.route = route;
    this.prefix = route === '/' ? '' : route.replace(/\/+$/, '');
    this.endpointFor = endpointFor;
    this.found = found;
    this.deps = deps;
    this.log = deps.log.child({ route, bridge: '2025→2026-07-28' });
    const idle = deps.limits.sessionIdle;
    this.sweeper = setInterval(() => this.sweep(idle), Math.max(250, Math.min(idle / 4, 10_000)));
    this.sweeper.unref();
  }

  get sessions(): number {
    return this.live.size;
  }

  /** Whether `ex` belongs to one of this front's sessions (its token or HTTP+SSE id). */
  owns(ex: BrokerExchange): boolean {
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    if (token !== undefined) return this.live.has(token);
    const sse = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    return sse !== null && this.live.has(sse);
  }

  async handle(ex: BrokerExchange, parsed: unknown): Promise<void> {
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    const pk = callerKey(ex);
    this.deps.metrics()?.bridged(this.route, 'legacy-to-modern');
    if (token === undefined && ex.req.method === 'GET' && ex.routeRest === '/sse') return this.openSse(ex, pk);
    const ep = this.endpointFor(ex);
    const sseId = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    if (token === undefined && sseId !== null) {
      const s = this.session(sseId, pk);
      s.lastActivity = Date.now();
      await (s.transport as SSEServerTransport).handlePostMessage(ex.req, ex.res, parsed);
      return;
    }
    let s: BridgedSession;
    if (token !== undefined) s = this.session(token, pk);
    else if (ex.req.method === 'POST' && isInitialize(parsed))
      s = this.open(pk, ep, (session) => this.streamable(session));
    else
      throw new SluiceError(
        'SLUICE_ERR_BAD_REQUEST',
        'this route bridges 2025-era clients: start with initialize (no Mcp-Session-Id), then send its Mcp-Session-Id',
      );
    await this.serve(s, ex, parsed);
  }

  private session(id: string, pk: string): BridgedSession {
    const s = this.live.get(id);
    if (!s || s.over || s.principal !== pk)
      throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no such session on this route (it ended, or never was)');
    return s;
  }

  private streamable(s: BridgedSession): { id: string; transport: WebStandardStreamableHTTPServerTransport } {
    const id = seal(this.deps.sessions(), {
      kind: 'session',
      route: this.route,
      replica: PROCESS,
      value: randomUUID(),
      principal: undefined,
      issuedAt: Math.floor(Date.now() / 1000),
    });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      eventStore: new EventBuffer(),
      keepAliveMs: this.deps.keepAliveMs,
      onsessionclosed: () => this.end(s, 'the client ended the session (DELETE)'),
    });
    transport.onerror = (err) => this.log.debug({ err: err.message }, 'bridge transport');
    return { id, transport };
  }

  private open(
    pk: string,
    ep: UpstreamEndpoint,
    make: (s: BridgedSession) => {
      id: string;
      transport: WebStandardStreamableHTTPServerTransport | SSEServerTransport;
    },
  ): BridgedSession {
    if (this.live.size >= this.deps.limits.maxSessions)
      throw new SluiceError(
        'SLUICE_ERR_NO_HEALTHY_UPSTREAM',
        `route ${this.route}: ${this.deps.limits.maxSessions} bridged sessions open (bridge.maxSessions)`,
        { headers: { 'retry-after': '1' } },
      );
    const f = this.found;
    const caps = { ...f.capabilities };
    // 2025 clients subscribe with resources/subscribe; the bridge carries it on the upstream listen.
    if (caps['resources']) caps['resources'] = { ...(caps['resources'] as object), subscribe: true };
    const server = new Server(f.serverInfo, {
      capabilities: caps as never,
      ...(f.instructions ? { instructions: f.instructions } : {}),
    });
    // The SDK's own setLevel keeps the level to itself; the bridge's sends it upstream per request.
    server.removeRequestHandler('logging/setLevel');
    const s = new BridgedSession(server, pk, ep);
    server.fallbackRequestHandler = ((req: Req, ctx: Ctx) => this.forward(s, req, ctx)) as never;
    server.oninitialized = () => void this.relisten(s);
    server.onclose = () => this.end(s, 'the transport closed');
    const { id, transport } = make(s);
    s.transport = transport;
    this.live.set(id, s);
    this.deps.metrics()?.bridgeSessions(this.route, this.live.size);
    return s;
  }

  private async openSse(ex: BrokerExchange, pk: string): Promise<void> {
    let sse: SSEServerTransport | undefined;
    const s = this.open(pk, this.endpointFor(ex), () => {
      sse = new SSEServerTransport(`${this.prefix}/messages`, ex.res);
      return { id: sse.sessionId, transport: sse };
    });
    s.active++;
    ex.res.once('close', () => {
      s.active--;
      this.end(s, 'the client closed its HTTP+SSE stream');
    });
    await s.server.connect(sse as never);
  }

  private async serve(s: BridgedSession, ex: BrokerExchange, parsed: unknown): Promise<void> {
    const t = s.transport as WebStandardStreamableHTTPServerTransport;
    if (!s.server.transport) await s.server.connect(t);
    s.active++;
    s.lastActivity = Date.now();
    const done = new AbortController();
    ex.res.once('close', () => {
      s.active--;
      s.lastActivity = Date.now();
      done.abort();
    });
    const answer = await t.handleRequest(
      webRequest(ex.req, done.signal),
      parsed === undefined ? {} : { parsedBody: parsed },
    );
    const sid = answer.headers.get(H.sessionId);
    if (sid) ex.responseSessionId = sid;
    writeWebResponse(ex, answer);
  }

  /** A client for one of the caller's requests, speaking for it (its initialize's info and capabilities). */
  private connect(s: BridgedSession, ctx: Ctx | undefined): Promise<Client> {
    const info = (s.server.getClientVersion() ?? { name: 'unknown-client', version: '0' }) as never;
    const capabilities = (s.server.getClientCapabilities() ?? {}) as Record<string, unknown>;
    return connectUpstream(
      s.ep,
      this.found,
      { info, capabilities },
      {
        // The upstream's input_required questions, asked of the caller on its call's stream.
        request: (method, params, signal) =>
          ctx
            ? ctx.mcpReq.send({ method, ...(params ? { params } : {}) }, { signal })
            : Promise.reject(new Error('no call to ask on')),
        notification: (method, params) => {
          if (ctx && method === 'notifications/message')
            void ctx.mcpReq.notify({ method, ...(params ? { params } : {}) });
          else if (!ctx)
            void s.server.notification({ method, ...(params ? { params } : {}) } as never).catch(() => undefined);
        },
      },
      { responseCacheStore: s.cache },
    );
  }

  private async forward(s: BridgedSession, req: Req, ctx: Ctx): Promise<unknown> {
    s.lastActivity = Date.now();
    // 2026-07-28 has no logging/setLevel: the level rides each request's _meta instead.
    if (req.method === 'logging/setLevel') {
      const level = req.params?.['level'];
      if (typeof level !== 'string') throw new SluiceError('SLUICE_ERR_BAD_REQUEST', 'params.level is required');
      s.logLevel = level;
      return {};
    }
    if (req.method === 'resources/subscribe' || req.method === 'resources/unsubscribe') {
      const uri = req.params?.['uri'];
      if (typeof uri !== 'string') throw new SluiceError('SLUICE_ERR_BAD_REQUEST', 'params.uri is required');
      if (req.method === 'resources/subscribe') s.uris.add(uri);
      else s.uris.delete(uri);
      await this.relisten(s);
      return {};
    }
    const client = await this.connect(s, ctx);
    const progressToken = ctx.mcpReq._meta?.['progressToken'];
    // Progress is sent in order and before the result (the client drops progress after its answer).
    let told: Promise<unknown> = Promise.resolve();
    try {
      const result = await forwardCall(client, withLogLevel(req, s.logLevel), {
        signal: ctx.mcpReq.signal,
        typedCall: true,
        onprogress:
          progressToken === undefined
            ? undefined
            : (p) =>
                (told = told.then(() =>
                  ctx.mcpReq
                    .notify({ method: 'notifications/progress', params: { ...p, progressToken } })
                    .catch(() => undefined),
                )),
      });
      await told;
      return result;
    } finally {
      void client.close().catch(() => undefined);
    }
  }

  /** (Re)open the upstream listen the caller's GET stream hears: list changes, and its subscribed URIs. */
  private async relisten(s: BridgedSession): Promise<void> {
    const old = s.listen;
    s.listen = undefined;
    await old?.close().catch(() => undefined);
    if (s.over) return;
    const caps = this.found.capabilities as Record<string, { listChanged?: boolean } | undefined>;
    const filter = {
      ...(caps['tools']?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps['prompts']?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps['resources']?.listChanged ? { resourcesListChanged: true } : {}),
      ...(s.uris.size ? { resourceSubscriptions: [...s.uris] } : {}),
    };
    if (Object.keys(filter).length === 0) return;
    try {
      const client = await this.connect(s, undefined);
      const sub = await client.listen(filter);
      s.listen = {
        client,
        close: async () => {
          await sub.close().catch(() => undefined);
          await client.close().catch(() => undefined);
        },
      };
      if (s.over) await s.listen.close();
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'bridge: the upstream listen could not be opened');
    }
  }

  private end(s: BridgedSession, why: string): void {
    if (s.over) return;
    s.over = true;
    for (const [k, v] of this.live) if (v === s) this.live.delete(k);
    void s.listen?.close();
    void s.server.close().catch(() => undefined);
    this.deps.metrics()?.bridgeSessions(this.route, this.live.size);
    this.log.debug({ why }, 'bridged session ended');
  }

  private sweep(idle: number): void {
    const now = Date.now();
    for (const s of [...this.live.values()])
      if (s.active === 0 && now - s.lastActivity >= idle) this.end(s, `idle for ${idle} ms (bridge.sessionIdle)`);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const s of [...this.live.values()]) this.end(s, 'Sluice is stopping');
  }
}

function withLogLevel(req: Req, level: string | undefined): Req {
  if (level === undefined) return req;
  const params = { ...(req.params ?? {}) };
  params['_meta'] = {
    ...((params['_meta'] as Record<string, unknown> | undefined) ?? {}),
    [LOG_LEVEL_META_KEY]: level,
  };
  return { method: req.method, params };
}
