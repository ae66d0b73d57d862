// What every generated fronting config needs to know, checked once: the replicas (one public
// path, the upstreams' own), the listener, and the CORS origin.

export interface FrontingOptions {
  upstreams: URL[];
  listen: { host: string; port: number };
  /** Access-Control-Allow-Origin. Default "*" (no credentials are ever allowed). */
  allowOrigin: string;
}

export class FrontingError extends Error {}

export const MCP_REQUEST_HEADERS =
  'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name';
export const MCP_EXPOSED_HEADERS = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate';
export const MCP_METHODS = 'GET, POST, DELETE, OPTIONS';
/**
 * OAuth protected-resource metadata (RFC 9728): MCP clients look for it at this path followed by
 * the MCP path, then at the bare path, on the public origin. Fronts route both to the upstream.
 */
export const PRM_PATH = '/.well-known/oauth-protected-resource';

export function frontingOptions(
  upstreams: string[],
  listen: string | undefined,
  allowOrigin: string | undefined,
): FrontingOptions {
  if (upstreams.length === 0) throw new FrontingError('at least one --upstream URL is needed');
  const urls = upstreams.map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new FrontingError(`"${u}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new FrontingError(`"${u}": only http and https upstreams`);
    if (url.username || url.password || url.search || url.hash)
      throw new FrontingError(`"${u}": no credentials, query or fragment`);
    return url;
  });
  const path = urls[0]!.pathname;
  if (urls.some((u) => u.pathname !== path || u.protocol !== urls[0]!.protocol))
    throw new FrontingError('all --upstream URLs must have the same scheme and path (the replicas of one MCP server)');
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen ?? '127.0.0.1:8080');
  if (!m) throw new FrontingError(`--listen "${listen}" is not host:port`);
  const origin = allowOrigin ?? '*';
  if (/[\s"'\\;{}]/.test(origin)) throw new FrontingError(`--allow-origin "${origin}" is not an origin`);
  return { upstreams: urls, listen: { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) }, allowOrigin: origin };
}

/** host:port of a URL, with the scheme's default port made explicit. */
export function hostPort(u: URL): string {
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

export function listenAddress(o: FrontingOptions): string {
  return `${o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port}`;
}

/** The public path: the upstreams' own (fronting proxies here do not rewrite paths). */
export function publicPath(o: FrontingOptions): string {
  return o.upstreams[0]!.pathname;
}
