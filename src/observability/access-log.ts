// One access-log record per exchange. Only these fields are ever written: no headers, no bodies,
// no session ids (only a hash), no Mcp-Param-* values.
import { createHash } from 'node:crypto';
import { capString, escapeUnsafe } from './safe-text.ts';

export interface AccessRecord {
  route: string | undefined;
  method: string;
  path: string;
  /** The client's address (through trusted proxies: the nearest hop that is not one). */
  client: string | undefined;
  status: number;
  era: string | undefined;
  rpcMethod: string | undefined;
  rpcName: string | undefined;
  latencyMs: number;
  bytesIn: number;
  bytesOut: number;
  /** The route's kind: relay (Sluice carries MCP between client and server) or broker (Sluice speaks it). */
  kind: 'relay' | 'broker';
  upstream: string | undefined;
  /** Id of the upstream replica that served the exchange. */
  replica: string | undefined;
  /** On a federated route: the server the request went to. */
  server: string | undefined;
  session: string | undefined;
  error: string | undefined;
  outcome: string;
  /** Set for refusals that security teams must see: such lines are never sampled. */
  security: string | undefined;
}

const FIELDS = [
  'route',
  'method',
  'path',
  'client',
  'status',
  'era',
  'rpcMethod',
  'rpcName',
  'latencyMs',
  'bytesIn',
  'bytesOut',
  'kind',
  'upstream',
  'replica',
  'server',
  'session',
  'error',
  'outcome',
  'security',
] as const;

/** Refusals that are security events (never sampled), by error code. */
const SECURITY_CODES: Record<string, string> = {
  SLUICE_ERR_ORIGIN_NOT_ALLOWED: 'origin-rejected',
  SLUICE_ERR_HOST_NOT_ALLOWED: 'host-rejected',
  SLUICE_ERR_HEADER_MISMATCH: 'header-body-mismatch',
  SLUICE_ERR_BODY_TOO_LARGE: 'limit-exceeded',
  SLUICE_ERR_HEADERS_TOO_LARGE: 'limit-exceeded',
  SLUICE_ERR_BATCH_TOO_LARGE: 'limit-exceeded',
  SLUICE_ERR_JSON_TOO_DEEP: 'limit-exceeded',
  SLUICE_ERR_REQUEST_TIMEOUT: 'limit-exceeded',
  SLUICE_ERR_BODY_MEMORY: 'limit-exceeded',
  SLUICE_ERR_DUPLICATE_HEADER: 'duplicate-header',
  SLUICE_ERR_BAD_PATH: 'ambiguous-path',
  SLUICE_ERR_UPSTREAM_REFUSED: 'upstream-address-refused',
  SLUICE_ERR_UPSTREAM_TLS: 'upstream-tls-failed',
  SLUICE_ERR_UNAUTHORIZED: 'auth-failed',
  SLUICE_ERR_INSUFFICIENT_SCOPE: 'insufficient-scope',
  SLUICE_ERR_POLICY_DENIED: 'policy-denied',
  SLUICE_ERR_POLICY_FORBIDDEN: 'policy-denied',
  SLUICE_ERR_RATE_LIMITED: 'rate-limited',
};

export function securityEventOf(outcome: string): string | undefined {
  return SECURITY_CODES[outcome];
}

/**
 * One access line, in the process log's shape (level, time, svc, fields, msg). Written by hand
 * rather than through pino: it is built once per request and pino's generic serializer cost
 * about a fifth of the gateway's CPU per small request (bench/README.md). Strings go through
 * JSON.stringify, so the line is always valid JSON with no raw control characters.
 */
export function formatAccessLine(r: AccessRecord, time: string): string {
  let line = `{"level":"info","time":"${time}","svc":"sluice"`;
  for (const key of FIELDS) {
    const v = r[key];
    if (v === undefined) continue;
    line +=
      typeof v === 'string'
        ? `,"${key}":${JSON.stringify(capString(v, 1024))}`
        : `,"${key}":${Number.isFinite(v) ? v : 0}`;
  }
  return escapeUnsafe(line + ',"msg":"access"}\n');
}

/** A short, stable, non-reversible handle for a session id: enough to correlate log lines. */
export function hashSessionId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  return createHash('sha256').update(id).digest('hex').slice(0, 16);
}

/**
 * The path without its query string: queries can carry secrets (tokens, HTTP+SSE session ids).
 * A target that is not a path (absolute form, with userinfo perhaps) is not logged as sent.
 */
export function pathForLog(rawPath: string): string {
  if (!rawPath.startsWith('/')) return rawPath === '' || rawPath === '*' ? rawPath : '[not a path]';
  const q = rawPath.indexOf('?');
  return q === -1 ? rawPath : rawPath.slice(0, q);
}
