// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and never cross the proxy,
// in either direction; neither do headers the sender listed in its Connection header.

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** The drop sets of the Connection values seen most (keep-alive, close, …): built once each. */
const seen = new Map<string, Set<string>>();
const SEEN_MAX = 64;

/** Lower-cased names to drop for a message whose Connection header value is `connection`. */
export function hopByHopNames(connection: string | string[] | undefined): Set<string> {
  if (connection === undefined) return ALWAYS_HOP_BY_HOP;
  // Nearly every message says "keep-alive" or "close": one lookup instead of a new Set each time.
  const key = Array.isArray(connection) ? connection.join(',') : connection;
  const known = seen.get(key);
  if (known) return known;
  const names = new Set(ALWAYS_HOP_BY_HOP);
  for (const token of key.split(',')) {
    const t = token.trim().toLowerCase();
    if (t) names.add(t);
  }
  // Bounded whatever clients send; the callers only read the set.
  if (seen.size < SEEN_MAX && key.length <= 256) seen.set(key, names);
  return names;
}
