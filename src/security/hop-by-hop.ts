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

/** Lower-cased names to drop for a message whose Connection header value is `connection`. */
export function hopByHopNames(connection: string | string[] | undefined): Set<string> {
  if (connection === undefined) return ALWAYS_HOP_BY_HOP;
  const names = new Set(ALWAYS_HOP_BY_HOP);
  for (const v of Array.isArray(connection) ? connection : [connection]) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) names.add(t);
    }
  }
  return names;
}
