// An HTTP route with `bridge: auto`: a relay route that Sluice turns into a broker for the
// clients whose era its upstream does not speak. Each replica's era is found once (the spec's
// discovery order, upstream-link.ts) and remembered; a client of the same era goes on down the
// relay stages untouched (byte-exact, no extra cost once the era is known); one of the other era
// is served by a front of its own era: a 2026-07-28 client of a 2025 server by the ModernFront,
// a 2025 client (sessionful or HTTP+SSE) of a 2026-07-28-only server by the LegacyFront.
import type { Agent } from 'undici';
import type { Route } from '../routing/route-table.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { BridgingConfig } from '../config/schema.ts';
import type { AddressPolicy } from '../security/address-policy.ts';
import type { UpstreamTls } from '../core/upstream-tls.ts';
import { H } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyRing } from '../session/key-ring.ts';
import type { BridgeMetrics } from './bridge-common.ts';
import { LegacyFront } from './legacy-front.ts';
import { ModernFront, type FrontDeps } from './modern-front.ts';
import {
  discoverUpstream,
  guardedFetch,
  type Discovery,
  type FetchLike,
  type UpstreamEndpoint,
} from './upstream-link.ts';
import { EraCache } from './era-cache.ts';
import type { BrokerCloseReason, BrokerState, RouteBroker } from '../core/route-broker.ts';
import { parsedBody, type BrokerExchange } from './web-exchange.ts';

export interface BridgeDeps {
  log: Logger;
  sessions: () => KeyRing;
  keepAliveMs: number;
  bridging: () => BridgingConfig;
  metrics: () => BridgeMetrics | undefined;
  /**
   * An Agent on the guarded connector for the route's address policy and TLS (every upstream
   * connect is judged), with the gateway's timeouts (connect, responseHeaders, streamIdle).
   */
  upstreamAgent: (policy: AddressPolicy, tls: UpstreamTls | undefined) => Agent;
}

/** What the bridge needs of the proxy's exchange beyond the broker's: the client's era and the replica. */
export interface BridgeExchange extends BrokerExchange {
  readonly era: 'http+sse' | 'sessionful' | 'stateless' | undefined;
  replica: Replica | undefined;
}

interface Fronts {
  modern?: ModernFront;
  legacy?: LegacyFront;
}

export class BridgeBroker implements RouteBroker<BridgeExchange> {
  readonly kind = 'bridge';
  readonly path: string;
  private route: Route;
  private readonly deps: BridgeDeps;
  private readonly log: Logger;
  private readonly agent: Agent;
  private readonly fetch: FetchLike;
  /** Each replica's era, found once (a failed probe is forgotten, so the next request asks again). */
  private readonly eras = new EraCache();
  private readonly fronts = new Map<string, Fronts>();
  private closed = false;

  constructor(route: Route, deps: BridgeDeps) {
    this.path = route.path;
    this.route = route;
    this.deps = deps;
    this.log = deps.log.child({ route: route.path, broker: 'bridge' });
    this.agent = deps.upstreamAgent(route.policy, route.tls);
    this.fetch = guardedFetch(this.agent);
  }

  /** The same upstreams: a reload keeps this broker (it reads the new route: its pool carries the same replicas). */
  keep(route: Route): boolean {
    const same =
      JSON.stringify([route.config.upstream, route.config.egress, route.config.tls]) ===
      JSON.stringify([this.route.config.upstream, this.route.config.egress, this.route.config.tls]);
    if (same) this.route = route;
    return same;
  }

  state(): BrokerState {
    return { kind: 'bridge', route: this.path, sessions: this.sessions };
  }

  /** Whether `ex` names a session one of this process's legacy fronts holds. */
  owns(ex: BrokerExchange): boolean {
    for (const f of this.fronts.values()) if (f.legacy?.owns(ex)) return true;
    return false;
  }

  get sessions(): number {
    let n = 0;
    for (const f of this.fronts.values()) n += (f.modern?.sessions ?? 0) + (f.legacy?.sessions ?? 0);
    return n;
  }

  /**
   * Serve `ex` when its client's era differs from its upstream's; otherwise leave it to the relay
   * (returns undefined, or a promise that settles without taking it).
   */
  handle(ex: BridgeExchange): Promise<void> | undefined {
    for (const f of this.fronts.values())
      if (f.legacy?.owns(ex)) return this.take(ex, () => (f.legacy as LegacyFront).handle(ex, parsedBody(ex)));
    // A session the relay made stays with the relay.
    if (ex.req.headers[H.sessionId] !== undefined || ex.routeRest === '/messages') return undefined;
    // A modern request: the 2026-07-28 headers, or the per-request envelope of any revision (an
    // unknown one is the modern front's to refuse with UnsupportedProtocolVersionError).
    const modern = ex.era === 'stateless' || hasEnvelope(ex);
    if (!modern && ex.req.method !== 'POST' && !(ex.req.method === 'GET' && ex.routeRest === '/sse')) return undefined;
    const replica = ex.replica ?? this.route.pool.pick(Date.now());
    if (!replica) return undefined;
    ex.replica = replica;
    const found = this.eras.get(replica.id);
    if (found) return this.bridges(found, modern) ? this.serve(ex, replica, found, modern) : undefined;
    return this.discover(replica).then(
      (f) => (this.bridges(f, modern) ? this.serve(ex, replica, f, modern) : undefined),
      // An upstream that cannot be asked is the relay's to report (502/504 in its own words).
      () => undefined,
    );
  }

  private bridges(found: Discovery, modernClient: boolean): boolean {
    return modernClient ? found.era !== 'modern' : found.era === 'modern';
  }

  private take(ex: BrokerExchange, serve: () => Promise<void>): Promise<void> {
    ex.handedOff = true;
    return serve();
  }

  private serve(ex: BridgeExchange, replica: Replica, found: Discovery, modern: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    ex.handedOff = true;
    ex.brokerUpstream = `${replica.origin}${replica.basePath} (bridged ${modern ? '2026-07-28→2025' : '2025→2026-07-28'})`;
    let f = this.fronts.get(replica.id);
    if (!f) this.fronts.set(replica.id, (f = {}));
    const cfg = this.deps.bridging();
    const deps: FrontDeps = {
      log: this.deps.log,
      sessions: this.deps.sessions,
      keepAliveMs: this.deps.keepAliveMs,
      limits: cfg,
      metrics: this.deps.metrics,
    };
    const ep = (e: BrokerExchange): UpstreamEndpoint => this.endpoint(replica, e);
    if (modern) return (f.modern ??= new ModernFront(this.path, ep, found, deps)).handle(ex, parsedBody(ex));
    return (f.legacy ??= new LegacyFront(this.path, ep, found, deps)).handle(ex, parsedBody(ex));
  }

  /** The replica's URL through the guarded agent, with the credential the relay would send. */
  private endpoint(replica: Replica, ex?: BrokerExchange): UpstreamEndpoint {
    const headers: Record<string, string> = {};
    if (ex?.upstreamCredential) headers[ex.upstreamCredential.header] = ex.upstreamCredential.value;
    else if (ex?.req.headers.authorization) headers['authorization'] = ex.req.headers.authorization;
    return { kind: 'http', url: replica.url.href, fetch: this.fetch, headers: () => headers };
  }

  private discover(replica: Replica): Promise<Discovery> {
    return this.eras.find(
      replica.id,
      () => discoverUpstream(this.endpoint(replica), this.deps.bridging().discoverTimeout),
      {
        found: (f) =>
          this.log.info({ replica: replica.id, era: f.era, server: f.serverInfo.name }, 'upstream era found'),
        failed: (err) =>
          this.log.warn({ replica: replica.id, err: err.message }, 'could not find the upstream era; relaying'),
      },
    );
  }

  async close(_reason: BrokerCloseReason, _deadline: number): Promise<void> {
    this.closed = true;
    await Promise.all([...this.fronts.values()].flatMap((f) => [f.modern?.close(), f.legacy?.close()]));
    this.fronts.clear();
    // Streams still open upstream (listens) end with it; close() would wait for them.
    await this.agent.destroy().catch(() => undefined);
  }
}

/** A POST carrying the per-request envelope of 2026-07-28 (or a later revision): a modern client. */
export function hasEnvelope(ex: BrokerExchange): boolean {
  if (ex.req.method !== 'POST' || !ex.body || !ex.body.includes('io.modelcontextprotocol/protocolVersion'))
    return false;
  const m = parsedBody(ex) as { params?: { _meta?: Record<string, unknown> } } | undefined;
  return typeof m?.params?._meta?.['io.modelcontextprotocol/protocolVersion'] === 'string';
}
