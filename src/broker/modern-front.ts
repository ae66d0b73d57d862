// 2026-07-28 (stateless) callers, served by a 2025-era upstream. Sluice is the 2026-07-28 server
// they see (the SDK v2's createMcpHandler: server/discover from the upstream's initialize result,
// the per-request envelope, listen streams) and a 2025 client of the upstream, on sessions pooled
// per principal and declared client identity (session-pool.ts). The upstream's mid-call
// questions become input_required rounds (input-park.ts); its list changes and resource updates
// reach the caller's listen streams; a caller leaving a call cancels it upstream.
import type { Client } from '@modelcontextprotocol/client';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  createMcpHandler,
  inputRequired,
  LOG_LEVEL_META_KEY,
  ProtocolError,
  Server,
  type InputRequests,
  type JSONRPCRequest,
  type McpHttpHandler,
  type Result,
  type ServerCapabilities,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { Logger } from '../observability/logger.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { hashPrincipal, open, seal } from '../session/token.ts';
import { SluiceError } from '../core/errors.ts';
import { ParkedCall, Parking } from './input-park.ts';
import { isMine, ownerTag } from './instance.ts';
import { INTERACTIVE, listenFilter, servesMethod, withRequestedUri, type ListenFilter } from './modern-methods.ts';
import { SessionPool, type PooledSession } from './session-pool.ts';
import { connectUpstream, type CallerIdentity, type Discovery, type UpstreamEndpoint } from './upstream-link.ts';
import {
  callerKey,
  forwardCall,
  isAnonymous,
  isSessionGone,
  logWanted,
  relayProgress,
  type BridgeLimits,
  type BridgeMetrics,
} from './bridge-common.ts';
import { webRequest, writeJson, writeWebResponse, type BrokerExchange } from './web-exchange.ts';

type Ctx = ServerContext;
type Req = JSONRPCRequest;

export interface FrontDeps {
  log: Logger;
  sessions: () => KeyRing;
  keepAliveMs: number;
  limits: BridgeLimits;
  metrics: () => BridgeMetrics | undefined;
}

interface Caller {
  handler: McpHttpHandler;
  lastUsed: number;
  /** Its HTTP exchanges in progress: a caller with any is never forgotten. */
  active: number;
  /** Listen streams open: resource URIs subscribed upstream, with how many streams want each. */
  uris: Map<string, number>;
  recent: Map<string, number>;
}

export class ModernFront {
  private readonly route: string;
  private readonly endpointFor: (ex: BrokerExchange) => UpstreamEndpoint;
  private readonly found: Discovery;
  private readonly deps: FrontDeps;
  private readonly log: Logger;
  private readonly pool: SessionPool<Opening>;
  private readonly parking: Parking;
  private readonly callers = new Map<string, Caller>();

  constructor(route: string, endpointFor: (ex: BrokerExchange) => UpstreamEndpoint, found: Discovery, deps: FrontDeps) {
    this.route = route;
    this.endpointFor = endpointFor;
    this.found = found;
    this.deps = deps;
    this.log = deps.log.child({ route, bridge: '2026-07-28→2025' });
    const l = deps.limits;
    this.pool = new SessionPool(
      { perCaller: l.sessionsPerCaller, total: l.maxSessions, idleMs: l.sessionIdle, disposable: isAnonymous },
      (key, s, how) => this.openSession(key, s, how),
    );
    this.parking = new Parking(l.maxPending, l.inputTimeout);
    this.pool.counted = (n) => this.deps.metrics()?.bridgeSessions(this.route, n);
    this.pool.reclaim = async () => {
      const park = this.parking.reclaim(l.inputHold);
      if (!park) return false;
      this.log.info(
        { heldMs: l.inputHold },
        'a call waiting for its caller gave its upstream session to another caller',
      );
      if (park.session && !park.session.closed) await this.pool.discardAndWait(park.session);
      return true;
    };
  }

  get sessions(): number {
    return this.pool.size;
  }

  async handle(ex: BrokerExchange, parsed: unknown): Promise<void> {
    const method = (parsed as { method?: unknown } | undefined)?.method;
    const id = (parsed as { id?: unknown } | undefined)?.id;
    // What the upstream cannot serve is refused before dispatch, as a 2026-07-28 server refuses a
    // method it lacks (404, -32601), not forwarded for the upstream to answer in its era's words.
    if (typeof method === 'string' && id !== undefined && !servesMethod(this.found.capabilities, method)) {
      ex.handedOff = true;
      writeJson(ex, 404, { jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } });
      return;
    }
    const pk = callerKey(ex);
    const caller = this.callerFor(pk);
    const done = new AbortController();
    caller.active++;
    ex.res.once('close', () => {
      caller.active--;
      caller.lastUsed = Date.now();
      done.abort();
      // An anonymous caller is new at each request: its handler serves this one only (closed
      // a moment later, once what the request set going upstream, a cancellation, is out).
      if (isAnonymous(pk))
        setTimeout(() => {
          this.callers.delete(pk);
          void caller.handler.close();
        }, 500).unref();
    });
    const listen = listenFilter(parsed);
    if (listen) await this.subscribe(pk, caller, listen, done.signal, this.endpointFor(ex));
    this.deps.metrics()?.bridged(this.route, 'modern-to-legacy');
    // The caller's upstream endpoint (its credential) rides to the handlers as the SDK's pass-through authInfo.
    const authInfo = { token: 'sluice-bridge', clientId: pk, scopes: [], extra: { endpoint: this.endpointFor(ex) } };
    const answer = await caller.handler.fetch(webRequest(ex.req, done.signal), { parsedBody: parsed, authInfo });
    writeWebResponse(ex, answer);
  }

  private callerFor(pk: string): Caller {
    let c = this.callers.get(pk);
    if (!c) {
      // One handler per principal: its listen streams hear only that principal's upstream sessions.
      if (this.callers.size >= this.deps.limits.maxSessions) this.forgetIdleCaller();
      if (this.callers.size >= this.deps.limits.maxSessions)
        throw new SluiceError(
          'SLUICE_ERR_BROKER_FULL',
          `the bridge serves ${this.deps.limits.maxSessions} callers, all busy (bridge.maxSessions)`,
          { headers: { 'retry-after': '1' } },
        );
      const handler = createMcpHandler(() => this.serverFor(pk), {
        legacy: 'reject',
        keepAliveMs: this.deps.keepAliveMs,
        onerror: (err) => this.log.debug({ err: err.message }, 'bridge front'),
      });
      c = { handler, lastUsed: Date.now(), active: 0, uris: new Map(), recent: new Map() };
      this.callers.set(pk, c);
    }
    c.lastUsed = Date.now();
    return c;
  }

  private forgetIdleCaller(): void {
    let oldest: [string, Caller] | undefined;
    for (const e of this.callers)
      if (e[1].active === 0 && e[1].uris.size === 0 && (!oldest || e[1].lastUsed < oldest[1].lastUsed)) oldest = e;
    if (oldest) {
      this.callers.delete(oldest[0]);
      void oldest[1].handler.close();
    }
  }

  /** The 2026-07-28 server a caller sees for one request: the upstream's identity, Sluice's relay. */
  private serverFor(pk: string): Server {
    const f = this.found;
    const server = new Server(f.serverInfo, {
      capabilities: f.capabilities as ServerCapabilities,
      ...(f.instructions ? { instructions: f.instructions } : {}),
    });
    server.fallbackRequestHandler = (req, ctx) => this.forward(pk, req, ctx) as Promise<Result>;
    return server;
  }

  private identity(ctx: Ctx): CallerIdentity {
    const env = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
    const info = env?.[CLIENT_INFO_META_KEY] as CallerIdentity['info'] | undefined;
    return {
      info: info && typeof info.name === 'string' ? info : { name: 'unknown-client', version: '0' },
      capabilities: (env?.[CLIENT_CAPABILITIES_META_KEY] as Record<string, unknown> | undefined) ?? {},
    };
  }

  private async forward(pk: string, req: Req, ctx: Ctx): Promise<unknown> {
    const state = ctx.mcpReq.requestState();
    if (typeof state === 'string') return this.resume(pk, state, ctx);
    const who = this.identity(ctx);
    const ep = ctx.http?.authInfo?.extra?.['endpoint'] as UpstreamEndpoint | undefined;
    if (!ep) throw new ProtocolError(-32603, 'bridge: no upstream for this request');
    const key = `${pk}\n${JSON.stringify(who.info)}\n${JSON.stringify(who.capabilities)}`;
    const interactive = INTERACTIVE.has(req.method);
    if (!interactive) return this.once(key, { who, ep }, req, ctx);
    const park = new ParkedCall(pk, req);
    let round: Ctx | undefined = ctx;
    const progressToken = ctx.mcpReq._meta?.['progressToken'];
    const owner = {
      ask: (m: string, p: Record<string, unknown> | undefined, signal: AbortSignal) => park.ask(m, p, signal),
      hear: (m: string, p: Record<string, unknown> | undefined) => {
        // The upstream's 2025 session logs everything (no setLevel); the caller hears what its round asked for.
        const env = round?.mcpReq.envelope as Record<string, unknown> | undefined;
        if (m === 'notifications/message' && !logWanted(env?.[LOG_LEVEL_META_KEY], p)) return;
        void round?.mcpReq.notify({ method: m, ...(p ? { params: p } : {}) }).catch(() => undefined);
      },
    };
    // Each round's progress goes to that round's stream, in order, and before the call's result.
    const progress = relayProgress(progressToken, (n) => round?.mcpReq.notify(n) ?? Promise.resolve());
    const onprogress = progress.onprogress;
    park.progressSent = progress.sent;
    // On a session of its own, so the upstream's requests during it are this call's.
    const run = this.withSession(key, { who, ep }, true, (s) => {
      s.owner = owner;
      park.session = s;
      return forwardCall(s.client, req, { signal: park.abort.signal, onprogress });
    });
    park.run(run);
    park.onRound = (c) => (round = c);
    return this.round(park, ctx);
  }

  /** A request that asks nothing back, on a shared session. */
  private once(key: string, how: Opening, req: Req, ctx: Ctx): Promise<unknown> {
    return this.withSession(key, how, false, (s) => forwardCall(s.client, req, { signal: ctx.mcpReq.signal }));
  }

  /** `use` on a leased session; one the upstream forgot (404: the request never ran there) is replaced once. */
  private async withSession(
    key: string,
    how: Opening,
    exclusive: boolean,
    use: (s: PooledSession) => Promise<unknown>,
  ): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.leaseFor(key, how, exclusive);
      try {
        return await use(s);
      } catch (err) {
        if (attempt === 0 && isSessionGone(err)) {
          this.pool.discard(s);
          this.log.info('upstream session expired; opened a new one');
          continue;
        }
        throw err;
      } finally {
        this.pool.release(s, exclusive);
      }
    }
  }

  private leaseFor(key: string, how: Opening, exclusive: boolean): Promise<PooledSession> {
    return this.pool.lease(key, exclusive, how);
  }

  private async openSession(key: string, s: PooledSession, how: Opening): Promise<Client> {
    const pk = key.slice(0, key.indexOf('\n'));
    const client = await connectUpstream(how.ep, this.found, how.who, {
      request: (method, params, signal, related) => {
        if (s.owner && related) return s.owner.ask(method, params, signal);
        // A stateless caller can be asked only in the middle of one of its calls.
        return Promise.reject(
          new ProtocolError(
            -32603,
            `${method} outside a call cannot reach a 2026-07-28 client (asked only during a call)`,
          ),
        );
      },
      notification: (method, params) => this.heard(pk, s, method, params),
      closed: () => this.pool.discard(s),
    });
    return client;
  }

  /** An upstream notification: a call's own (logs) go to that call; changes go to the principal's listen streams. */
  private heard(pk: string, s: PooledSession, method: string, params: Record<string, unknown> | undefined): void {
    const caller = this.callers.get(pk);
    if (method === 'notifications/message' || method === 'notifications/progress') {
      s.owner?.hear(method, params);
      return;
    }
    if (!caller) return;
    // Several of the principal's sessions report the same change: the streams hear it once a second at most.
    const what = method === 'notifications/resources/updated' ? `${method} ${String(params?.['uri'])}` : method;
    const now = Date.now();
    if (now - (caller.recent.get(what) ?? 0) < 1000) return;
    caller.recent.set(what, now);
    const n = caller.handler.notify;
    if (method === 'notifications/tools/list_changed') n.toolsChanged();
    else if (method === 'notifications/prompts/list_changed') n.promptsChanged();
    else if (method === 'notifications/resources/list_changed') n.resourcesChanged();
    else if (method === 'notifications/resources/updated' && typeof params?.['uri'] === 'string')
      n.resourceUpdated(params['uri']);
  }

  /** One round of a parked call for the caller: its result, or input_required with what the upstream asked. */
  private async round(park: ParkedCall, ctx: Ctx): Promise<unknown> {
    park.onRound?.(ctx);
    const left = (): void => park.cancel('the client closed its stream');
    ctx.mcpReq.signal.addEventListener('abort', left, { once: true });
    try {
      const r = await park.next(ctx.mcpReq.signal);
      if (r.kind !== 'asks') await park.progressSent();
      if (r.kind === 'done') return r.result;
      if (r.kind === 'failed') throw withRequestedUri(r.error, park.request);
      if (this.parking.full) {
        park.cancel('too many calls wait for their clients (bridge.maxPending)');
        throw new ProtocolError(-32603, 'Sluice holds too many calls waiting for input (bridge.maxPending); try again');
      }
      this.parking.keep(park);
      const requestState = seal(this.deps.sessions(), {
        kind: 'request-state',
        route: this.route,
        replica: ownerTag(),
        value: park.id,
        principal: isAnonymous(park.principal) ? undefined : hashPrincipal(park.principal),
        issuedAt: Math.floor(Date.now() / 1000),
      });
      const inputRequests = Object.fromEntries(
        park.pending().map((a) => [a.key, { method: a.method, params: a.params ?? {} }]),
      );
      return inputRequired({ inputRequests: inputRequests as InputRequests, requestState });
    } finally {
      ctx.mcpReq.signal.removeEventListener('abort', left);
      park.onRound?.(undefined);
    }
  }

  private async resume(pk: string, state: string, ctx: Ctx): Promise<unknown> {
    // An anonymous round is owned by its sealed requestState alone (sealed with no principal).
    const claims = open(this.deps.sessions(), 'request-state', state, isAnonymous(pk) ? undefined : hashPrincipal(pk));
    const mine = claims && claims.route === this.route && isMine(claims.replica);
    const park = mine ? this.parking.take(claims.value, pk) : undefined;
    if (!park) throw new ProtocolError(-32602, 'Invalid or expired requestState', { reason: 'invalid_request_state' });
    park.answer(ctx.mcpReq.inputResponses);
    return this.round(park, ctx);
  }

  /** A listen stream's resource URIs: subscribed upstream (on one of the principal's sessions) while it is open. */
  private async subscribe(
    pk: string,
    caller: Caller,
    filter: ListenFilter,
    signal: AbortSignal,
    ep: UpstreamEndpoint,
  ): Promise<void> {
    const uris = (filter.resourceSubscriptions ?? []).filter((u): u is string => typeof u === 'string');
    const subscribing = uris.length > 0 && this.found.capabilities['resources'] !== undefined;
    // An anonymous caller has no upstream session but the ones its requests hold: its listen
    // stream holds one of its own while open, so it hears the server's changes.
    if (!subscribing && !isAnonymous(pk)) return;
    const key = `${pk}\n${JSON.stringify({ name: 'sluice-listen', version: '1' })}\n{}`;
    const s = await this.leaseFor(
      key,
      { who: { info: { name: 'sluice-listen', version: '1' }, capabilities: {} }, ep },
      false,
    );
    for (const uri of subscribing ? uris : []) {
      const n = caller.uris.get(uri) ?? 0;
      caller.uris.set(uri, n + 1);
      if (n === 0)
        await s.client
          .subscribeResource({ uri })
          .catch((e: Error) => this.log.debug({ uri, err: e.message }, 'subscribe'));
    }
    signal.addEventListener(
      'abort',
      () => {
        for (const uri of subscribing ? uris : []) {
          const n = (caller.uris.get(uri) ?? 1) - 1;
          if (n > 0) caller.uris.set(uri, n);
          else {
            caller.uris.delete(uri);
            void s.client.unsubscribeResource({ uri }).catch(() => undefined);
          }
        }
        this.pool.release(s, false);
      },
      { once: true },
    );
  }

  async close(): Promise<void> {
    this.parking.close();
    await Promise.all([...this.callers.values()].map((c) => c.handler.close()));
    this.callers.clear();
    await this.pool.close();
  }
}

interface Opening {
  who: CallerIdentity;
  ep: UpstreamEndpoint;
}
