// Public path prefix -> upstream base URL. Longest prefix wins; matching is on whole segments
// (/mcp matches /mcp and /mcp/x, never /mcpx).
import type { RouteConfig } from '../config/schema.ts';

export interface Route {
  readonly path: string;
  readonly upstream: URL;
  /** upstream origin, e.g. http://127.0.0.1:3000 */
  readonly origin: string;
  /** upstream base path without trailing slash ('' for the root) */
  readonly basePath: string;
  readonly preserveHost: boolean;
  /** True when public and upstream paths differ, so HTTP+SSE endpoint events need rewriting. */
  readonly rewritesPaths: boolean;
}

export interface RouteMatch {
  route: Route;
  /** Upstream path + query (query verbatim). */
  upstreamTarget: string;
}

function trimSlash(p: string): string {
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

export function compileRoutes(routes: readonly RouteConfig[]): Route[] {
  return routes
    .map((r) => {
      const upstream = new URL(r.upstream);
      const basePath = trimSlash(upstream.pathname);
      const path = r.path === '/' ? '' : r.path;
      return { path: r.path, upstream, origin: upstream.origin, basePath, preserveHost: r.preserveHost, rewritesPaths: path !== basePath };
    })
    .sort((a, b) => b.path.length - a.path.length);
}

export function matchRoute(routes: readonly Route[], target: string): RouteMatch | undefined {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  for (const route of routes) {
    const prefix = route.path === '/' ? '' : route.path;
    if (path === prefix || path.startsWith(`${prefix}/`) || (prefix === '' && path.startsWith('/'))) {
      const rest = path.slice(prefix.length);
      const upstreamPath = route.basePath + rest || '/';
      return { route, upstreamTarget: upstreamPath + query };
    }
  }
  return undefined;
}

/**
 * Map a URL the upstream handed out (an HTTP+SSE `endpoint`) to the public one: same origin as
 * the client used (so a path-absolute reference), public prefix instead of the upstream base,
 * query kept byte for byte. Returns the input unchanged when it points outside the route.
 */
export function publicEndpoint(route: Route, requestUpstreamTarget: string, data: string): string {
  const q = data.indexOf('?');
  const ref = q === -1 ? data : data.slice(0, q);
  const query = q === -1 ? '' : data.slice(q);
  let resolved: URL;
  try {
    resolved = new URL(ref, route.origin + requestUpstreamTarget);
  } catch {
    return data;
  }
  if (resolved.origin !== route.origin) return data;
  const p = resolved.pathname;
  const base = route.basePath;
  if (base !== '' && p !== base && !p.startsWith(`${base}/`)) return data;
  const rest = p.slice(base.length);
  const prefix = route.path === '/' ? '' : route.path;
  return (prefix + rest || '/') + query;
}
