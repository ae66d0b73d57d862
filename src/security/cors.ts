// CORS for browser-based MCP clients, per route: which origins may read answers, what a
// preflight allows (the MCP request headers, and whichever Mcp-Param-* the client asks for),
// and which response headers a browser script may see. Pure: headers in, headers out.

export interface CorsPolicy {
  /** Origins allowed to read answers; "*" allows any (no credentials are ever allowed). */
  allowOrigins: readonly string[];
  /** Request headers allowed beyond the MCP ones. */
  allowHeaders: readonly string[];
  /** How long a browser may cache a preflight, ms. */
  maxAge: number;
}

export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Last-Event-ID',
  'Mcp-Method',
  'Mcp-Name',
];
export const CORS_EXPOSED_HEADERS = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Last-Event-ID';
export const CORS_METHODS = 'GET, POST, DELETE, OPTIONS';

export function corsEnabled(p: CorsPolicy): boolean {
  return p.allowOrigins.length > 0;
}

/** The Access-Control-Allow-Origin value for `origin`, or undefined when it is not allowed. */
export function allowedOrigin(p: CorsPolicy, origin: string | undefined): string | undefined {
  if (origin === undefined) return undefined;
  if (p.allowOrigins.includes('*')) return '*';
  return p.allowOrigins.includes(origin) ? origin : undefined;
}

export function isPreflight(
  method: string | undefined,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  return (
    method === 'OPTIONS' && headers['origin'] !== undefined && headers['access-control-request-method'] !== undefined
  );
}

/** Headers of the 204 answer to an allowed preflight. */
export function preflightHeaders(
  p: CorsPolicy,
  allowOrigin: string,
  requested: string | undefined,
): Record<string, string> {
  const allowed = new Set([...CORS_ALLOWED_HEADERS, ...p.allowHeaders].map((h) => h.toLowerCase()));
  const names = [...CORS_ALLOWED_HEADERS, ...p.allowHeaders];
  // Mcp-Param-* names are chosen by each tool: allow the ones asked for (syntax-checked).
  for (const h of (requested ?? '').split(',')) {
    const name = h.trim().toLowerCase();
    if (name.startsWith('mcp-param-') && /^[a-z0-9-]+$/.test(name) && !allowed.has(name)) {
      allowed.add(name);
      names.push(name);
    }
  }
  return {
    'access-control-allow-origin': allowOrigin,
    'access-control-allow-methods': CORS_METHODS,
    'access-control-allow-headers': names.join(', '),
    'access-control-max-age': String(Math.floor(p.maxAge / 1000)),
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  };
}

/** Headers added to every answer (forwarded or Sluice's own) for an allowed origin. */
export function responseCorsHeaders(allowOrigin: string): Record<string, string> {
  return {
    'access-control-allow-origin': allowOrigin,
    'access-control-expose-headers': CORS_EXPOSED_HEADERS,
    vary: 'Origin',
  };
}
