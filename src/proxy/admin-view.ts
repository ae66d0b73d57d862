// What the admin page shows, as one JSON document built from the running gateway: routes and
// their kind, replicas with health, ejection and drain state, each route's requests per second
// and latency over the last minute, SSE streams and sessions per replica, broker processes, recent
// security refusals, the running config with its secrets masked, and the registrations. Figures
// come from the same counters /metrics reports, so the page and a scrape agree.
import { maskedConfig } from '../config/masked.ts';
import type { Registration } from '../routing/registry.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { Route } from '../routing/route-table.ts';
import { routeLabel, type GatewayContext, type GatewayRoute } from './context.ts';

export type RouteKind = 'relay' | 'bridge' | 'stdio' | 'federated' | 'registered';

export interface AdminSnapshot {
  at: string;
  /** Under --workers: the worker whose view this is (each keeps its own figures). */
  worker?: number;
  pid: number;
  uptimeS: number;
  rssMiB: number;
  /** Why the gateway is not ready; empty when it is. */
  notReady: string[];
  routes: RouteView[];
  refusals: ReturnType<NonNullable<GatewayContext['metrics']>['live']['recentRefusals']>;
  registrations: (Registration & { route: string })[];
  config: unknown;
}

interface ReplicaView {
  id: string;
  /** Which federated server it belongs to, if any. */
  server?: string;
  url: string;
  state: ReturnType<Replica['state']>;
  inFlight: number;
  streams: number;
  sessions: number;
}

interface RouteView {
  path: string;
  kind: RouteKind;
  /** The metrics label the figures below are counted under. */
  label: string;
  requestsTotal: number;
  streamsOpen: number;
  /** Requests in the last complete second, and their mean latency. */
  rps: number;
  meanMs: number | null;
  series: { t: number; requests: number; meanMs: number | null; errors: number }[];
  replicas: ReplicaView[];
  processes?: { running: number; max: number };
}

export function routeKind(ctx: GatewayContext, r: Route): RouteKind {
  if (routeLabel(ctx, r.path) !== r.path) return 'registered';
  if (r.members.length) return 'federated';
  if (r.config.stdio) return 'stdio';
  return r.config.bridge === 'auto' ? 'bridge' : 'relay';
}

export async function adminSnapshot(
  ctx: GatewayContext,
  registrations: readonly Registration[],
  registeredPath: (r: Registration) => string,
  notReady: string[],
  worker?: number,
): Promise<AdminSnapshot> {
  const metrics = ctx.metrics;
  const totals = (await metrics?.routeTotals()) ?? new Map<string, { requests: number; streams: number }>();
  const sessions = metrics?.live.sessionsByReplica() ?? new Map<string, number>();
  const now = Date.now();
  const replicaView = (r: GatewayRoute, rep: Replica, server?: string): ReplicaView => {
    const key = `${r.path} ${rep.id}`;
    return {
      id: rep.id,
      ...(server ? { server } : {}),
      url: rep.url.origin + rep.url.pathname,
      state: rep.state(now),
      inFlight: rep.outstanding,
      streams: metrics?.live.streamsOf(key) ?? 0,
      sessions: sessions.get(key) ?? 0,
    };
  };
  const routes = ctx.routes.map((r): RouteView => {
    const label = routeLabel(ctx, r.path) ?? r.path;
    const series = metrics?.live.series(label, now) ?? [];
    const last = series[series.length - 2]; // the last complete second
    const kind = routeKind(ctx, r);
    const processes = r.broker?.state().processes;
    return {
      path: r.path,
      kind,
      label,
      requestsTotal: totals.get(label)?.requests ?? 0,
      streamsOpen: totals.get(label)?.streams ?? 0,
      rps: last?.requests ?? 0,
      meanMs: last?.meanMs ?? null,
      series,
      replicas:
        kind === 'stdio'
          ? []
          : [
              ...r.pool.replicas.map((rep) => replicaView(r, rep)),
              ...r.members.flatMap((m) => m.route.pool.replicas.map((rep) => replicaView(r, rep, m.name))),
            ],
      ...(processes ? { processes } : {}),
    };
  });
  return {
    at: new Date(now).toISOString(),
    ...(worker !== undefined ? { worker } : {}),
    pid: process.pid,
    uptimeS: Math.round(process.uptime()),
    rssMiB: Math.round((process.memoryUsage.rss() / 1048576) * 10) / 10,
    notReady,
    routes,
    refusals: metrics?.live.recentRefusals() ?? [],
    // Through the mask as well: a registered URL may carry user-info.
    registrations: maskedConfig(registrations.map((r) => ({ ...r, route: registeredPath(r) }))) as never,
    config: maskedConfig(ctx.config),
  };
}
