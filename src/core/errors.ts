// The one error catalogue. Every failure Sluice itself answers with is listed here with the
// HTTP status and JSON-RPC code it maps to; `errorResponse` in proxy/ turns any error into bytes.

export interface ErrorSpec {
  readonly status: number;
  /** JSON-RPC error code used when the request was JSON-RPC. */
  readonly rpcCode: number;
  readonly message: string;
  /** A machine-readable reason in the JSON-RPC error's data, where the peer SDKs define one. */
  readonly reason?: string;
}

export const ERRORS = {
  SLUICE_ERR_ROUTE_NOT_FOUND: { status: 404, rpcCode: -32601, message: 'No route for this path' },
  SLUICE_ERR_SESSION_NOT_FOUND: { status: 404, rpcCode: -32001, message: 'Session not found' },
  // 2026-07-28 state Sluice sealed (issue 18): in-band JSON-RPC errors (HTTP 200), as the SDK
  // servers answer them, so clients treat them as the call's failure and start the call again.
  SLUICE_ERR_REQUEST_STATE_INVALID: {
    status: 200,
    rpcCode: -32602,
    message: 'Invalid or expired requestState',
    reason: 'invalid_request_state',
  },
  SLUICE_ERR_TASK_NOT_FOUND: { status: 200, rpcCode: -32602, message: 'Invalid or nonexistent taskId' },
  SLUICE_ERR_BAD_REQUEST: { status: 400, rpcCode: -32600, message: 'Bad request' },
  SLUICE_ERR_BAD_PATH: { status: 400, rpcCode: -32600, message: 'Bad request: ambiguous request path' },
  SLUICE_ERR_PARSE: { status: 400, rpcCode: -32700, message: 'Parse error: request body is not valid JSON' },
  SLUICE_ERR_JSON_TOO_DEEP: { status: 400, rpcCode: -32600, message: 'Invalid Request: JSON nested too deeply' },
  SLUICE_ERR_INVALID_JSONRPC: {
    status: 400,
    rpcCode: -32600,
    message: 'Invalid Request: body is not a JSON-RPC message',
  },
  SLUICE_ERR_BATCH_NOT_ALLOWED: {
    status: 400,
    rpcCode: -32600,
    message: 'Invalid Request: JSON-RPC batches are not allowed in this protocol version',
  },
  SLUICE_ERR_BATCH_TOO_LARGE: { status: 400, rpcCode: -32600, message: 'Invalid Request: JSON-RPC batch too large' },
  SLUICE_ERR_DUPLICATE_HEADER: { status: 400, rpcCode: -32600, message: 'Bad request: duplicate header' },
  SLUICE_ERR_HEADER_MISMATCH: { status: 400, rpcCode: -32020, message: 'Header mismatch' },
  SLUICE_ERR_ORIGIN_NOT_ALLOWED: { status: 403, rpcCode: -32000, message: 'Forbidden: Origin not allowed' },
  SLUICE_ERR_HOST_NOT_ALLOWED: { status: 403, rpcCode: -32000, message: 'Forbidden: Host not allowed' },
  SLUICE_ERR_UNAUTHORIZED: { status: 401, rpcCode: -32000, message: 'Unauthorized' },
  SLUICE_ERR_INSUFFICIENT_SCOPE: { status: 403, rpcCode: -32000, message: 'Forbidden: insufficient scope' },
  // 200: a JSON-RPC error answer to the call, which MCP clients surface as the call's failure.
  SLUICE_ERR_POLICY_DENIED: { status: 200, rpcCode: -32003, message: 'Forbidden by policy' },
  // HTTP+SSE posts are answered on the stream, batches as a whole: there the refusal is a 403.
  SLUICE_ERR_POLICY_FORBIDDEN: { status: 403, rpcCode: -32003, message: 'Forbidden by policy' },
  SLUICE_ERR_RATE_LIMITED: { status: 429, rpcCode: -32000, message: 'Too many requests' },
  SLUICE_ERR_AUTH_UNAVAILABLE: {
    status: 503,
    rpcCode: -32603,
    message: "Token validation unavailable: the issuer's keys could not be fetched",
  },
  SLUICE_ERR_METHOD_NOT_ALLOWED: { status: 405, rpcCode: -32600, message: 'Method not allowed' },
  SLUICE_ERR_REQUEST_TIMEOUT: { status: 408, rpcCode: -32600, message: 'Request body not received in time' },
  SLUICE_ERR_BODY_MEMORY: {
    status: 503,
    rpcCode: -32603,
    message: 'Gateway overloaded: request body memory budget in use',
  },
  SLUICE_ERR_BODY_TOO_LARGE: { status: 413, rpcCode: -32600, message: 'Request body too large' },
  SLUICE_ERR_HEADERS_TOO_LARGE: { status: 431, rpcCode: -32600, message: 'Request header fields too large' },
  SLUICE_ERR_UPSTREAM_UNAVAILABLE: { status: 502, rpcCode: -32603, message: 'Upstream unavailable' },
  SLUICE_ERR_UPSTREAM_REFUSED: { status: 502, rpcCode: -32603, message: 'Upstream address not allowed' },
  SLUICE_ERR_UPSTREAM_TLS: { status: 502, rpcCode: -32603, message: 'Upstream TLS verification failed' },
  SLUICE_ERR_UPSTREAM_AUTH: { status: 502, rpcCode: -32603, message: "Upstream refused the route's credential" },
  SLUICE_ERR_UPSTREAM_PROTOCOL: { status: 502, rpcCode: -32603, message: 'Upstream sent an invalid response' },
  SLUICE_ERR_UPSTREAM_TIMEOUT: { status: 504, rpcCode: -32603, message: 'Upstream timed out' },
  SLUICE_ERR_NO_HEALTHY_UPSTREAM: { status: 503, rpcCode: -32603, message: 'No healthy upstream replica' },
  /** A broker route's own bound (maxProcesses, its per-caller share, bridging.maxSessions) is reached. */
  SLUICE_ERR_BROKER_FULL: {
    status: 503,
    rpcCode: -32603,
    message: 'No room for another upstream process or session on this route',
  },
  SLUICE_ERR_UPSTREAM_BUSY: {
    status: 503,
    rpcCode: -32603,
    message: 'Upstream busy: the stdio server is not reading its input',
  },
  SLUICE_ERR_OVERLOADED: { status: 503, rpcCode: -32603, message: 'Gateway overloaded: too many requests in flight' },
  SLUICE_ERR_SHUTTING_DOWN: { status: 503, rpcCode: -32603, message: 'Gateway is shutting down' },
  SLUICE_ERR_INTERNAL: { status: 500, rpcCode: -32603, message: 'Internal gateway error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * How an exchange ended, for the access log, metrics and traces: one of these words, or the code
 * of the error Sluice answered with.
 */
export type Outcome =
  | 'ok'
  | 'client-closed'
  | 'preflight'
  | 'metadata'
  | 'shutdown'
  | 'slow-client'
  | 'upstream-error'
  | 'upstream-auth'
  | 'upstream-idle'
  | 'upstream-timeout'
  | 'request-timeout'
  | ErrorCode;

export function isErrorCode(outcome: string): outcome is ErrorCode {
  return Object.hasOwn(ERRORS, outcome);
}

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly rpcCode: number;
  /** Extra response headers (e.g. Allow on 405). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    const spec = ERRORS[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message, { cause: options?.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.status = spec.status;
    this.rpcCode = spec.rpcCode;
    this.headers = options?.headers ?? {};
  }
}

export function isSluiceError(err: unknown): err is SluiceError {
  return err instanceof SluiceError;
}
