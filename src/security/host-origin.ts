// Host and Origin allow lists per listener: the DNS-rebinding defence and the browser-origin
// check. A loopback listener answers only Host names of loopback (plus those allowed); any
// listener refuses an Origin that is neither same-origin, loopback on a loopback listener, nor
// allowed. Pure: the header values in, a verdict out.

export interface HostOriginPolicy {
  /** Whether the Host header is checked (always for loopback listeners, else when hosts are listed). */
  readonly hostCheck: boolean;
  readonly loopback: boolean;
  /** Allowed host names, lower case, IPv6 without brackets; "*.example.com" entries in `suffixes`. */
  readonly hosts: ReadonlySet<string>;
  readonly suffixes: readonly string[];
  readonly origins: ReadonlySet<string>;
  readonly anyOrigin: boolean;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function listenerPolicy(listener: {
  host: string;
  allowHosts: readonly string[];
  allowOrigins: readonly string[];
}): HostOriginPolicy {
  const loopback = isLoopbackHost(listener.host);
  const names = listener.allowHosts.map((h) => h.toLowerCase().replace(/^\[|\]$/g, ''));
  const own = listener.host.toLowerCase().replace(/^\[|\]$/g, '');
  const wildcard = own === '0.0.0.0' || own === '::';
  return {
    hostCheck: loopback || names.length > 0,
    loopback,
    hosts: new Set([
      ...names.filter((n) => !n.startsWith('*.')),
      ...(loopback ? LOOPBACK_NAMES : []),
      ...(wildcard ? [] : [own]),
    ]),
    suffixes: names.filter((n) => n.startsWith('*.')).map((n) => n.slice(1)),
    origins: new Set(listener.allowOrigins.filter((o) => o !== '*')),
    anyOrigin: listener.allowOrigins.includes('*'),
  };
}

/** The host name of a Host header value (or of an origin's authority), or undefined when malformed. */
export function hostName(authority: string): string | undefined {
  try {
    const u = new URL(`http://${authority}`);
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return undefined;
    return u.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

export function hostAllowed(p: HostOriginPolicy, host: string | undefined): boolean {
  if (!p.hostCheck) return true;
  const name = host === undefined ? undefined : hostName(host);
  if (name === undefined) return false;
  return p.hosts.has(name) || p.suffixes.some((s) => name.endsWith(s));
}

/**
 * An Origin is allowed when absent, listed (here or by the route's CORS), same-origin with the
 * request's Host, or — on a loopback listener — itself loopback.
 */
export function originAllowed(
  p: HostOriginPolicy,
  origin: string | undefined,
  host: string | undefined,
  routeOrigins: readonly string[],
): boolean {
  if (origin === undefined) return true;
  if (p.anyOrigin || p.origins.has(origin) || routeOrigins.includes('*') || routeOrigins.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" and other opaque origins must be listed
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (host !== undefined && url.host.toLowerCase() === host.toLowerCase()) return true;
  return p.loopback && isLoopbackHost(url.hostname);
}
