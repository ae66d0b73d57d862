// 2025-era callers (sessionful Streamable HTTP, and HTTP+SSE) served by a 2026-07-28 upstream.
// Sluice is the 2025 server they see: it answers initialize from the upstream's server/discover,
// mints the session (a sealed token naming this process) and keeps it; each of the caller's
// requests goes upstream as a stateless 2026-07-28 request on an SDK v2 client made for it (the
// per-request _meta envelope, Mcp-Method/Mcp-Name and the Mcp-Param-* headers the tool list's
// x-mcp-header annotations ask for). An input_required answer becomes real requests to the caller
// on the stream of its call, and the call is retried upstream with the answers (the SDK client's
// multi-round-trip driver). The caller's GET stream hears an upstream subscriptions/listen, which
// also carries what resources/subscribe asked for.
import { InMemoryResponseCacheStore, type Client } from '@modelcontextprotocol/client';
import {
  LOG_LEVEL_META_KEY,
  Server,
  type JSONRPCRequest,
  type Result,
  type ServerCapabilities,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { SluiceError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { ANY_RESULT, forwardCall, legacyResult, relayProgress } from './bridge-common.ts';
import { ClientSessions, type ClientSession } from './client-sessions.ts';
import type { FrontDeps } from './modern-front.ts';
import { connectUpstream, type Discovery, type UpstreamEndpoint } from './upstream-link.ts';
import type { BrokerExchange } from './web-exchange.ts';

type Ctx = ServerContext;
type Req = JSONRPCRequest;

class BridgedSession implements ClientSession {
  readonly server: Server;
  transport: ClientSession['transport'];
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
  private readonly endpointFor: (ex: BrokerExchange) => UpstreamEndpoint;
  private readonly found: Discovery;
  private readonly deps: FrontDeps;
  private readonly log: Logger;
  private readonly live: ClientSessions<BridgedSession>;

  constructor(route: string, endpointFor: (ex: BrokerExchange) => UpstreamEndpoint, found: Discovery, deps: FrontDeps) {
    this.route = route;
    this.endpointFor = endpointFor;
    this.found = found;
    this.deps = deps;
    this.log = deps.log.child({ route, bridge: '2025→2026-07-28' });
    this.live = new ClientSessions(
      route,
      { sessions: deps.sessions, keepAliveMs: deps.keepAliveMs, limits: () => deps.limits, log: this.log },
      {
        create: (pk, ex) => this.open(pk, this.endpointFor(ex)),
        ended: (s) => void s.listen?.close(),
        count: (n) => deps.metrics()?.bridgeSessions(route, n),
      },
      { serves: 'bridged to a 2026-07-28 server', limit: 'bridge.maxSessions' },
    );
  }

  get sessions(): number {
    return this.live.size;
  }

  /** Whether `ex` belongs to one of this front's sessions (its token or HTTP+SSE id). */
  owns(ex: BrokerExchange): boolean {
    return this.live.owns(ex);
  }

  handle(ex: BrokerExchange, parsed: unknown): Promise<void> {
    this.deps.metrics()?.bridged(this.route, 'legacy-to-modern');
    return this.live.handle(ex, parsed);
  }

  private open(pk: string, ep: UpstreamEndpoint): BridgedSession {
    const f = this.found;
    const caps = { ...f.capabilities };
    // 2025 clients subscribe with resources/subscribe; the bridge carries it on the upstream listen.
    if (caps['resources']) caps['resources'] = { ...(caps['resources'] as object), subscribe: true };
    const server = new Server(f.serverInfo, {
      capabilities: caps as ServerCapabilities,
      ...(f.instructions ? { instructions: f.instructions } : {}),
    });
    // The SDK's own setLevel keeps the level to itself; the bridge's sends it upstream per request.
    server.removeRequestHandler('logging/setLevel');
    const s = new BridgedSession(server, pk, ep);
    server.fallbackRequestHandler = (req, ctx) => this.forward(s, req, ctx) as Promise<Result>;
    server.oninitialized = () => void this.relisten(s);
    return s;
  }

  /** A client for one of the caller's requests, speaking for it (its initialize's info and capabilities). */
  private connect(s: BridgedSession, ctx: Ctx | undefined): Promise<Client> {
    const info = s.server.getClientVersion() ?? { name: 'unknown-client', version: '0' };
    const capabilities = (s.server.getClientCapabilities() ?? {}) as Record<string, unknown>;
    return connectUpstream(
      s.ep,
      this.found,
      { info, capabilities },
      {
        // The upstream's input_required questions, asked of the caller on its call's stream.
        request: (method, params, signal) =>
          ctx
            ? ctx.mcpReq.send({ method, ...(params ? { params } : {}) }, ANY_RESULT, { signal })
            : Promise.reject(new Error('no call to ask on')),
        notification: (method, params) => {
          if (ctx && method === 'notifications/message')
            void ctx.mcpReq.notify({ method, ...(params ? { params } : {}) });
          else if (!ctx) void s.server.notification({ method, ...(params ? { params } : {}) }).catch(() => undefined);
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
    const progress = relayProgress(ctx.mcpReq._meta?.['progressToken'], (n) => ctx.mcpReq.notify(n));
    try {
      // A 2025 session that never called setLevel hears every log message (the SDKs' default); a
      // 2026-07-28 server sends only what the request's level asks for, so the bridge asks for all.
      const result = await forwardCall(client, withLogLevel(req, s.logLevel ?? 'debug'), {
        signal: ctx.mcpReq.signal,
        typedCall: true,
        onprogress: progress.onprogress,
      });
      await progress.sent();
      return legacyResult(result);
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

  close(): void {
    this.live.close();
  }
}

function withLogLevel(req: Req, level: string): Req {
  const params = { ...(req.params ?? {}) };
  params['_meta'] = {
    ...((params['_meta'] as Record<string, unknown> | undefined) ?? {}),
    [LOG_LEVEL_META_KEY]: level,
  };
  return { ...req, params };
}
