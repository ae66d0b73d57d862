// 2026-07-28: Mcp-Method / Mcp-Name / MCP-Protocol-Version mirror the body, and anyone who
// reads both must reject a mismatch (400, JSON-RPC -32020) so that a component routing on the
// header and a server executing the body can never disagree.
import { H, mirroredNameField, requiresHeaderValidation } from '../core/mcp.ts';

const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
const PLAIN_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Decode an Mcp-Name / Mcp-Param-* value; undefined when it is neither plain nor valid sentinel. */
export function decodeHeaderValue(raw: string): string | undefined {
  const m = SENTINEL.exec(raw);
  if (m) {
    const b64 = m[1] ?? '';
    if (b64.length % 4 !== 0) return undefined;
    const bytes = Buffer.from(b64, 'base64');
    const text = new TextDecoder('utf-8', { fatal: true });
    try {
      return text.decode(bytes);
    } catch {
      return undefined;
    }
  }
  if (raw.startsWith('=?base64?')) return undefined;
  return PLAIN_VALUE.test(raw) ? raw : undefined;
}

/** An Mcp-Name / Mcp-Param-* value as a header carries it: plain when it can be, else the base64 sentinel. */
export function encodeHeaderValue(value: string): string {
  return PLAIN_VALUE.test(value) ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

type Headers = Record<string, string | string[] | undefined>;

function single(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A mismatch description, or undefined when the headers agree with the body (or need no check). */
export function headerBodyMismatch(headers: Headers, body: unknown): string | undefined {
  const version = single(headers, H.protocolVersion);
  if (!requiresHeaderValidation(version)) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const msg = body as Record<string, unknown>;
  const method = msg['method'];
  if (typeof method !== 'string') return undefined;
  const isRequest = 'id' in msg;

  const hMethod = single(headers, H.method);
  if (hMethod === undefined) {
    if (isRequest) return 'Mcp-Method header is required';
  } else if (hMethod !== method) {
    return `Mcp-Method header value '${hMethod}' does not match body value '${method}'`;
  }

  const params =
    typeof msg['params'] === 'object' && msg['params'] !== null
      ? (msg['params'] as Record<string, unknown>)
      : undefined;
  const meta =
    params && typeof params['_meta'] === 'object' && params['_meta'] !== null
      ? (params['_meta'] as Record<string, unknown>)
      : undefined;
  const metaVersion = meta?.[PROTOCOL_VERSION_META];
  if (typeof metaVersion === 'string' && metaVersion !== version) {
    return `MCP-Protocol-Version header value '${version}' does not match body value '${metaVersion}'`;
  }

  const field = isRequest ? mirroredNameField(method) : undefined;
  if (field !== undefined) {
    const bodyName = params?.[field];
    const rawName = single(headers, H.name);
    if (rawName === undefined) return `Mcp-Name header is required for ${method}`;
    const decoded = decodeHeaderValue(rawName);
    if (decoded === undefined) return 'Mcp-Name header value is malformed';
    if (typeof bodyName !== 'string' || decoded !== bodyName) {
      return `Mcp-Name header value '${decoded}' does not match body value '${String(bodyName)}'`;
    }
  }
  return undefined;
}
