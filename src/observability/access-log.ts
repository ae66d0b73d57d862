// One access-log record per exchange. Only these fields are ever written: no headers, no bodies,
// no session ids (only a hash), no Mcp-Param-* values.
import { createHash } from 'node:crypto';

export interface AccessRecord {
  route: string | undefined;
  method: string;
  path: string;
  status: number;
  era: string | undefined;
  rpcMethod: string | undefined;
  rpcName: string | undefined;
  latencyMs: number;
  bytesIn: number;
  bytesOut: number;
  upstream: string | undefined;
  session: string | undefined;
  error: string | undefined;
  outcome: string;
}

/** A short, stable, non-reversible handle for a session id: enough to correlate log lines. */
export function hashSessionId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  return createHash('sha256').update(id).digest('hex').slice(0, 16);
}

/** The path without its query string: queries can carry secrets (tokens, HTTP+SSE session ids). */
export function pathForLog(rawPath: string): string {
  const q = rawPath.indexOf('?');
  return q === -1 ? rawPath : rawPath.slice(0, q);
}
