// Everything a request needs from the running gateway, built once at start-up.
import type { BlockList, Socket } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { Route } from '../routing/route-table.ts';
import type { KeyRing } from '../session/key-ring.ts';
import type { UpstreamClient } from '../transport/upstream-client.ts';
import type { BodyBudget } from '../transport/read-body.ts';
import type { BucketStore } from '../security/token-bucket.ts';
import type { RouteGuard } from './route-guard.ts';
import type { RouteBroker } from '../core/route-broker.ts';

/** A route as the gateway runs it: the route table's entry and what it enforces about callers. */
export interface GatewayRoute extends Route {
  /** Authentication, policy and rate limits; undefined for a route that checks nothing. */
  readonly guard: RouteGuard | undefined;
  /**
   * Set for a broker route (a stdio upstream, a federated route) and a bridging one (`bridge: auto`);
   * undefined for a relay route. The pipeline hands it exchanges and never imports src/broker/.
   */
  readonly broker?: RouteBroker | undefined;
}

/** An exchange that graceful shutdown must wind down. */
export interface Drainable {
  /** 'stream': a long-lived SSE stream, ended at once; 'request': a POST, allowed to finish. */
  readonly kind: 'stream' | 'request';
  /** End now: SSE streams get a `retry:` hint when they sit between events. */
  stop(retryMs: number): void;
  /** The replica's drain deadline passed: what runs against it ends (a fan-in only drops that replica). */
  replicaGone(replica: Replica, retryMs: number): void;
}

/** Config, keys and routes are each replaced whole by a reload, never edited in place. */
export interface GatewayContext {
  config: Config;
  /** Seals and opens the session tokens clients see as Mcp-Session-Id. */
  sessions: KeyRing;
  /** Longest prefix first; each with its guard (replaced whole by a reload). */
  routes: readonly GatewayRoute[];
  /** The Redis bucket store shared by Sluice processes (rateLimiting.redis); undefined: in memory. */
  readonly sharedBuckets: BucketStore | undefined;
  readonly client: UpstreamClient;
  readonly log: Logger;
  /** Writes one access line; undefined when the access log is off. */
  access: ((line: string) => void) | undefined;
  trusted: BlockList;
  readonly active: Set<Drainable>;
  /** Does the replica accept a connection now (through the route's guard)? */
  readonly reachable: (route: Route, replica: Replica) => Promise<boolean>;
  draining: boolean;
  /** Connections from another Sluice instance's hand-offs (the peer listener): served while draining. */
  readonly peerConnections: WeakSet<Socket>;
  /** Exchanges in flight on the public listeners (limits.concurrency caps it). */
  inFlight: number;
  /** Memory held by request bodies (limits.bodyMemory). */
  readonly bodies: BodyBudget;
  /** Prometheus metrics; undefined (and never computed) without an admin listener to serve them. */
  readonly metrics: GatewayMetrics | undefined;
  /** Key of the payload log's hash mode. */
  readonly logHashKey: Buffer;
  /** OpenTelemetry tracing; undefined when off. */
  readonly tracing: Tracing | undefined;
}

/** The metrics label of a route: its configured path, or one label for all registered routes. */
export function routeLabel(ctx: GatewayContext, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  for (const r of ctx.config.routes) if (r.path === path) return path;
  return `${ctx.config.registrations.pathPrefix}/*`;
}

/** The federated routes' servers and how they stand: the admin API's /admin/federation. */
export function federationStates(routes: readonly GatewayRoute[]): Record<string, unknown>[] {
  return routes.flatMap((r) => {
    const s = r.broker?.state();
    return s?.kind === 'federation' ? [{ route: s.route, sessions: s.sessions, servers: s.servers }] : [];
  });
}
