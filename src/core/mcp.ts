// MCP wire vocabulary shared by every layer: header names, protocol eras, JSON-RPC shapes.

export const H = {
  sessionId: 'mcp-session-id',
  protocolVersion: 'mcp-protocol-version',
  method: 'mcp-method',
  name: 'mcp-name',
  paramPrefix: 'mcp-param-',
  lastEventId: 'last-event-id',
  /** Set by `sluice doctor` on its requests so `sluice probe` can say which of them arrived. */
  doctorMarker: 'x-sluice-doctor',
} as const;

/** The first revision whose requests mirror method/name into headers and must be validated. */
export const FIRST_STATELESS_VERSION = '2026-07-28';
/** The only revision that allowed JSON-RPC batches. */
export const BATCH_VERSION = '2025-03-26';

export type Era = 'http+sse' | 'sessionful' | 'stateless';

/** Protocol revisions are ISO dates, so string order is release order. */
export function requiresHeaderValidation(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= FIRST_STATELESS_VERSION;
}

/** Per the 2025-06-18 spec, a request without the header is treated as 2025-03-26. */
export function allowsBatches(version: string | undefined): boolean {
  return version === undefined || version === BATCH_VERSION;
}

export interface JsonRpcSummary {
  /** Method of the (first) message; undefined for responses. */
  method?: string;
  /** params.name or params.uri for tools/call, resources/read, prompts/get, etc. */
  name?: string;
  /** JSON-RPC id of a single request, to echo on errors Sluice answers itself. */
  id?: string | number | null;
  isRequest: boolean;
  batchSize: number;
}

const NAMED_METHODS = new Set([
  'tools/call',
  'prompts/get',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
]);

/**
 * The params field a 2026-07-28 request's Mcp-Name header mirrors (SEP-2243; the tasks rows are
 * SEP-2663's, which has intermediaries route a task's requests on it), or undefined when the
 * method has no Mcp-Name.
 */
export function mirroredNameField(method: string): 'name' | 'uri' | 'taskId' | undefined {
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return 'name';
    case 'resources/read':
      return 'uri';
    case 'tasks/get':
    case 'tasks/update':
    case 'tasks/cancel':
      return 'taskId';
    default:
      return undefined;
  }
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function nameOf(msg: JsonObject): string | undefined {
  const method = msg['method'];
  const params = msg['params'];
  if (typeof method !== 'string' || !isObject(params) || !NAMED_METHODS.has(method)) return undefined;
  const name = params['name'] ?? params['uri'];
  return typeof name === 'string' ? name : undefined;
}

/** Is this value shaped like one JSON-RPC 2.0 message (request, notification or response)? */
export function isJsonRpcMessage(v: unknown): v is JsonObject {
  if (!isObject(v) || v['jsonrpc'] !== '2.0') return false;
  if (typeof v['method'] === 'string') return true;
  return 'id' in v && ('result' in v || 'error' in v);
}

export function summarize(body: unknown): JsonRpcSummary | undefined {
  if (Array.isArray(body)) {
    if (body.length === 0 || !body.every(isJsonRpcMessage)) return undefined;
    const first = body[0] as JsonObject;
    const method = typeof first['method'] === 'string' ? first['method'] : undefined;
    return {
      method,
      name: nameOf(first),
      isRequest: body.some((m) => 'method' in m && 'id' in m),
      batchSize: body.length,
    };
  }
  if (!isJsonRpcMessage(body)) return undefined;
  const method = typeof body['method'] === 'string' ? body['method'] : undefined;
  const id = body['id'];
  return {
    method,
    name: nameOf(body),
    id: typeof id === 'string' || typeof id === 'number' ? id : null,
    isRequest: method !== undefined && 'id' in body,
    batchSize: 1,
  };
}
