// Public path prefix -> upstream base URL. Longest prefix wins; matching is on whole segments
// (/mcp matches /mcp and /mcp/x, never /mcpx).
import type { RouteConfig, ServerConfig } from '../config/schema.ts';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.ts';
import type { AddressPolicy } from '../security/address-policy.ts';
import type { UpstreamTls } from '../core/upstream-tls.ts';
import { ReplicaPool, type Replica } from './replica-pool.ts';

export interface Route {
  readonly path: string;
  /** The public prefix as matched ('' for the root route). */
  readonly prefix: string;
  readonly pool: ReplicaPool;
  readonly config: RouteConfig;
  readonly preserveHost: boolean;
  /** Enforced at every upstream connect of this route. */
  readonly policy: AddressPolicy;
  /** TLS options for https replicas (files read); undefined: system CAs, verified. */
  readonly tls: UpstreamTls | undefined;
  /** A federated route's servers (`servers:`), each compiled as a route of its own; [] otherwise. */
  readonly members: readonly Member[];
}

/** One server of a federated route: its name, the prefix of its names, and its own replicas and policies. */
export interface Member {
  readonly name: string;
  readonly prefix: string;
  readonly route: Route;
  readonly config: ServerConfig;
}

export interface RouteMatch<R extends Route = Route> {
  route: R;
  /** The request path below the route's prefix ('' or starting with '/'). */
  rest: string;
  /** The query with its '?', verbatim ('' when none). */
  query: string;
}

/** Routes, longest prefix first. A reload passes the old table so replica state carries over. */
export function compileRoutes(
  routes: readonly RouteConfig[],
  previous: readonly Route[] = [],
  now = Date.now(),
): Route[] {
  return routes
    .map((r) =>
      compileRoute(
        r,
        previous.find((p) => p.path === r.path),
        now,
      ),
    )
    .sort((a, b) => b.path.length - a.path.length);
}

function compileRoute(r: RouteConfig, old: Route | undefined, now: number): Route {
  return {
    path: r.path,
    prefix: r.path === '/' ? '' : r.path,
    pool: new ReplicaPool(r, old?.pool, now),
    config: r,
    preserveHost: r.preserveHost,
    policy: policyOf(r, old?.policy),
    tls: tlsOf(r, old),
    members: Object.entries(r.servers ?? {}).map(([name, s]) => ({
      name,
      prefix: s.prefix ?? name,
      config: s,
      route: compileRoute(memberRoute(r, s), old?.members.find((m) => m.name === name)?.route, now),
    })),
  };
}

/** A federated server as a route of its own: the route's settings, with the server's in their place. */
function memberRoute(r: RouteConfig, s: ServerConfig): RouteConfig {
  return {
    ...r,
    upstream: s.upstream,
    stdio: s.stdio,
    balance: s.balance,
    healthCheck: s.healthCheck,
    ejection: s.ejection,
    egress: s.egress ?? r.egress,
    tls: s.tls ?? r.tls,
    servers: undefined,
  };
}

/** Every route and every federated server's route: what health checks and egress checks walk. */
export function withMembers<R extends Route>(routes: readonly R[]): Route[] {
  return routes.flatMap((r) => [r, ...r.members.map((m) => m.route)]);
}

/** The route's address policy; the same object across reloads when unchanged (it keys connection pools). */
function policyOf(r: RouteConfig, old: AddressPolicy | undefined): AddressPolicy {
  const p = addressPolicyOf(r.egress);
  return old && JSON.stringify(old) === JSON.stringify(p) ? old : p;
}

/** An `egress:` block of the config as the address policy the guarded connector enforces. */
export function addressPolicyOf(e: RouteConfig['egress']): AddressPolicy {
  return Object.freeze({
    strict: e.strict,
    requireHttps: e.requireHttps,
    allowCidrs: e.allow,
    allowHosts: e.allowHosts,
  });
}

/** The route's upstream TLS options with the PEM files read; the same object while unchanged (it keys pools). */
function tlsOf(r: RouteConfig, old: Route | undefined): UpstreamTls | undefined {
  if (!r.tls) return undefined;
  if (old?.tls && JSON.stringify(old.config.tls) === JSON.stringify(r.tls)) return old.tls;
  const read = (file: string | undefined, what: string): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError('routes', [`routes (path ${r.path}): tls.${what}: ${(err as Error).message}`]);
    }
  };
  const ca = read(r.tls.ca, 'ca');
  const cert = read(r.tls.cert, 'cert');
  const key = read(r.tls.key, 'key');
  return Object.freeze({
    rejectUnauthorized: r.tls.verify,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(r.tls.servername ? { servername: r.tls.servername } : {}),
  });
}

export function matchRoute<R extends Route>(routes: readonly R[], target: string): RouteMatch<R> | undefined {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  for (const route of routes) {
    const prefix = route.prefix;
    if (path === prefix || path.startsWith(`${prefix}/`) || (prefix === '' && path.startsWith('/'))) {
      return { route, rest: path.slice(prefix.length), query };
    }
  }
  return undefined;
}

/** The replica's path + query for a request path below the route prefix. */
export function upstreamTarget(replica: Replica, rest: string, query: string): string {
  return (replica.basePath + rest || '/') + query;
}

/** True when public and upstream paths differ, so HTTP+SSE endpoint events need rewriting. */
export function rewritesPaths(route: Route, replica: Replica): boolean {
  return route.prefix !== replica.basePath;
}

/**
 * Map a URL the upstream handed out (an HTTP+SSE `endpoint`) to the public one: same origin as
 * the client used (so a path-absolute reference), public prefix instead of the upstream base,
 * query kept byte for byte. Returns the input unchanged when it points outside the route.
 */
export function publicEndpoint(route: Route, replica: Replica, requestUpstreamTarget: string, data: string): string {
  const q = data.indexOf('?');
  const ref = q === -1 ? data : data.slice(0, q);
  const query = q === -1 ? '' : data.slice(q);
  let resolved: URL;
  try {
    resolved = new URL(ref, replica.origin + requestUpstreamTarget);
  } catch {
    return data;
  }
  if (resolved.origin !== replica.origin) return data;
  const p = resolved.pathname;
  const base = replica.basePath;
  if (base !== '' && p !== base && !p.startsWith(`${base}/`)) return data;
  const rest = p.slice(base.length);
  return (route.prefix + rest || '/') + query;
}
