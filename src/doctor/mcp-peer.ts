// JSON-RPC over the wire as the doctor speaks it: raw enough to see every header and event the
// path delivers, MCP-shaped enough to hold a session, call the probe's tools and speak the
// stateless 2026-07-28 shape.
import { randomUUID } from 'node:crypto';
import { FIRST_STATELESS_VERSION, H } from '../core/mcp.ts';
import type { Exchange, SseEvent, Wire } from './wire.ts';

export const SESSION_VERSION = '2025-11-25';

export type JsonObject = Record<string, unknown>;

export interface RpcExchange extends Exchange {
  /** The JSON-RPC response to this request (matched by id), when it arrived. */
  reply?: JsonObject;
  /** Notifications that came on the response stream, with arrival times. */
  notifications: { message: JsonObject; at: number; id?: string }[];
}

export interface Session {
  id: string | undefined;
  protocolVersion: string;
  serverName: string;
  /** The exchange that opened it. */
  init: RpcExchange;
}

export interface PostOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Return true to stop reading the stream (after this event). */
  onEvent?: (event: SseEvent, message: JsonObject | undefined) => boolean | void;
  /** Send this exact text instead of the serialised message (malformed-body checks). */
  rawBody?: string;
  method?: string;
}

export class McpPeer {
  readonly url: URL;
  readonly wire: Wire;
  /** Headers the user asked for on every request (e.g. Authorization). */
  readonly userHeaders: Record<string, string>;
  readonly marker: string;
  /** Default bound of one exchange, ms. */
  readonly timeoutMs: number;
  private nextId = 1;

  constructor(url: URL, wire: Wire, userHeaders: Record<string, string>, timeoutMs = 15_000) {
    this.url = url;
    this.wire = wire;
    this.userHeaders = userHeaders;
    this.timeoutMs = timeoutMs;
    this.marker = `doctor-${randomUUID()}`;
  }

  id(): number {
    return this.nextId++;
  }

  headers(extra: Record<string, string> = {}, marker = this.marker): Record<string, string> {
    return {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      [H.doctorMarker]: marker,
      ...this.userHeaders,
      ...extra,
    };
  }

  sessionHeaders(s: Session, extra: Record<string, string> = {}): Record<string, string> {
    return this.headers({ ...(s.id ? { [H.sessionId]: s.id } : {}), [H.protocolVersion]: s.protocolVersion, ...extra });
  }

  async post(message: JsonObject | undefined, opts: PostOptions = {}): Promise<RpcExchange> {
    const wantId = message?.['id'];
    let reply: JsonObject | undefined;
    const notifications: RpcExchange['notifications'] = [];
    const ex = await this.wire.exchange(this.url, {
      method: opts.method ?? 'POST',
      headers: opts.headers ?? this.headers(),
      ...(opts.method && opts.method !== 'POST' ? {} : { body: opts.rawBody ?? JSON.stringify(message) }),
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      onEvent: (ev) => {
        const msg = parseJson(ev.data);
        if (msg && wantId !== undefined && msg['id'] === wantId && ('result' in msg || 'error' in msg)) reply = msg;
        else if (msg && typeof msg['method'] === 'string')
          notifications.push({ message: msg, at: ev.at, ...(ev.id !== undefined ? { id: ev.id } : {}) });
        // Stop once the answer is in, unless the check wants the stream as it is.
        return opts.onEvent ? opts.onEvent(ev, msg) : reply !== undefined;
      },
    });
    if (!reply && ex.body) {
      const msg = parseJson(ex.body);
      if (msg && ('result' in msg || 'error' in msg)) reply = msg;
    }
    return { ...ex, ...(reply ? { reply } : {}), notifications };
  }

  initializeMessage(): JsonObject {
    return {
      jsonrpc: '2.0',
      id: this.id(),
      method: 'initialize',
      params: {
        protocolVersion: SESSION_VERSION,
        capabilities: {},
        clientInfo: { name: 'sluice-doctor', version: '1' },
      },
    };
  }

  /** Opens a session; the exchange tells why when it did not. */
  async initialize(extra: Record<string, string> = {}): Promise<{ ex: RpcExchange; session?: Session }> {
    const ex = await this.post(this.initializeMessage(), { headers: this.headers(extra) });
    const result = ex.reply?.['result'] as JsonObject | undefined;
    if (ex.status !== 200 || !result) return { ex };
    const serverInfo = (result['serverInfo'] ?? {}) as JsonObject;
    return {
      ex,
      session: {
        id: ex.headers[H.sessionId],
        protocolVersion: String(result['protocolVersion'] ?? SESSION_VERSION),
        serverName: String(serverInfo['name'] ?? ''),
        init: ex,
      },
    };
  }

  async notifyInitialized(s: Session): Promise<RpcExchange> {
    return this.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { headers: this.sessionHeaders(s) });
  }

  async request(s: Session, method: string, params: JsonObject = {}, opts: PostOptions = {}): Promise<RpcExchange> {
    return this.post(
      { jsonrpc: '2.0', id: this.id(), method, params },
      { ...opts, headers: this.sessionHeaders(s, opts.headers) },
    );
  }

  async callTool(
    s: Session,
    name: string,
    args: JsonObject,
    opts: PostOptions & { progress?: boolean } = {},
  ): Promise<RpcExchange> {
    const { message } = this.toolCall(name, args, opts.progress ?? false, false);
    return this.post(message, { ...opts, headers: this.sessionHeaders(s, opts.headers) });
  }

  /** A stateless 2026-07-28 tools/call: the method and name mirrored into headers, no session. */
  async callToolStateless(
    name: string,
    args: JsonObject,
    opts: PostOptions & { progress?: boolean } = {},
  ): Promise<RpcExchange> {
    const { message, headers } = this.toolCall(name, args, opts.progress ?? false, true);
    return this.post(message, { ...opts, headers: this.headers({ ...headers, ...opts.headers }) });
  }

  /** The message (and the shape's own headers) of a tools/call in either shape. */
  toolCall(
    name: string,
    args: JsonObject,
    progress: boolean,
    stateless: boolean,
  ): { message: JsonObject; headers: Record<string, string> } {
    const id = this.id();
    const meta: JsonObject = {
      ...(progress ? { progressToken: `doctor-${id}` } : {}),
      ...(stateless
        ? {
            'io.modelcontextprotocol/protocolVersion': FIRST_STATELESS_VERSION,
            'io.modelcontextprotocol/clientInfo': { name: 'sluice-doctor', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': {},
          }
        : {}),
    };
    const message = {
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: args, ...(Object.keys(meta).length ? { _meta: meta } : {}) },
    };
    return {
      message,
      headers: stateless
        ? { [H.protocolVersion]: FIRST_STATELESS_VERSION, [H.method]: 'tools/call', [H.name]: name }
        : {},
    };
  }
}

export function parseJson(text: string): JsonObject | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

/** The text of the first content item of a tools/call result. */
export function toolText(ex: RpcExchange): string | undefined {
  const result = ex.reply?.['result'] as { content?: { type?: string; text?: string }[] } | undefined;
  return result?.content?.find((c) => c.type === 'text')?.text;
}

/** A JSON-RPC error object, when the reply or body is one. */
export function rpcError(ex: Exchange & { reply?: JsonObject }): { code: number; message: string } | undefined {
  const msg = ex.reply ?? parseJson(ex.body);
  const err = msg?.['error'] as { code?: unknown; message?: unknown } | undefined;
  return err && typeof err.code === 'number' ? { code: err.code, message: String(err.message ?? '') } : undefined;
}

/** One line saying what came back, for check details. */
export function describeReply(ex: Exchange & { reply?: JsonObject }): string {
  if (ex.status === 0) return ex.end.error ?? 'no answer';
  const err = rpcError(ex);
  const type = (ex.headers['content-type'] ?? 'no content-type').split(';')[0];
  if (err) return `${ex.status} with JSON-RPC error ${err.code} "${err.message.slice(0, 80)}"`;
  const body = ex.body.trim().replace(/\s+/g, ' ').slice(0, 80);
  return `${ex.status} ${type}${body ? ` "${body}"` : ''}${ex.end.how === 'cut' ? ` (cut: ${ex.end.error})` : ''}`;
}
