// Checks on the request head that must happen before anything is forwarded.

/** Headers that must appear at most once: a second copy is a smuggling or confusion attempt. */
const SINGLETON = [
  'host',
  'content-length',
  'mcp-session-id',
  'authorization',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
];

/** The first singleton header that occurs more than once in rawHeaders, or undefined. */
export function duplicateSingleton(rawHeaders: readonly string[]): string | undefined {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const idx = SINGLETON.indexOf((rawHeaders[i] ?? '').toLowerCase());
    if (idx === -1) continue;
    const bit = 1 << idx;
    if (seen & bit) return SINGLETON[idx];
    seen |= bit;
  }
  return undefined;
}

/**
 * The path and query of a request target. Absolute-form (`GET http://host/p`) is accepted as
 * RFC 9112 requires, but its authority is ignored: routing never depends on it. Anything else
 * that is not origin-form yields undefined.
 */
export function originFormTarget(url: string | undefined): string | undefined {
  if (!url) return undefined;
  if (url.startsWith('/')) return url;
  const m = /^https?:\/\/[^/?#]*(\/[^#]*|\?[^#]*)?/i.exec(url);
  if (!m) return undefined;
  const rest = m[1] ?? '/';
  return rest.startsWith('?') ? `/${rest}` : rest;
}
