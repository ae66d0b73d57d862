// Which 2026-07-28 methods the modern front serves for a 2025 upstream, which of them may ask the
// client something back, and the translations of a 2025 answer into the 2026-07-28 words.
import { ProtocolError } from '@modelcontextprotocol/server';

/** The SDK's own 2026-07-28 server answers these (discover, listen) or refuses them (removed methods). */
const SDK_SERVED = new Set(['server/discover', 'subscriptions/listen', 'initialize', 'ping', 'logging/setLevel']);
/** Forwarded when the upstream declares the capability they belong to. */
const BY_CAPABILITY = new Set([
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
]);

/** Calls during which a 2025 upstream may ask its client something: each gets a session of its own. */
export const INTERACTIVE = new Set(['tools/call', 'prompts/get', 'resources/read', 'completion/complete']);

/** Whether a 2026-07-28 client's `method` is served by an upstream of these capabilities. */
export function servesMethod(caps: Record<string, unknown>, method: string): boolean {
  if (SDK_SERVED.has(method)) return true;
  const family = method.slice(0, method.indexOf('/'));
  if (method.startsWith('tasks/')) return caps['tasks'] !== undefined || JSON.stringify(caps).includes('tasks');
  if (family === 'completion') return caps['completions'] !== undefined;
  if (method === 'resources/subscribe' || method === 'resources/unsubscribe') return false;
  return BY_CAPABILITY.has(method) && caps[family] !== undefined;
}

export interface ListenFilter {
  resourceSubscriptions?: unknown[];
}

export function listenFilter(parsed: unknown): ListenFilter | undefined {
  const m = parsed as { method?: unknown; params?: { notifications?: ListenFilter } } | undefined;
  return m?.method === 'subscriptions/listen' ? (m.params?.notifications ?? {}) : undefined;
}

/**
 * A 2025 server's "resource not found" (-32002 before SEP-2164, or -32602 without the URI) in the
 * 2026-07-28 words: -32602 with `data.uri` naming what was asked for.
 */
export function withRequestedUri(err: unknown, req: { method: string; params?: Record<string, unknown> }): unknown {
  const e = err as { code?: unknown; message?: unknown; data?: Record<string, unknown> } | undefined;
  const uri = req.params?.['uri'];
  if (req.method !== 'resources/read' || typeof uri !== 'string' || (e?.code !== -32002 && e?.code !== -32602))
    return err;
  if (e.code === -32602 && e.data?.['uri'] !== undefined) return err;
  return new ProtocolError(-32602, typeof e.message === 'string' ? e.message : 'Resource not found', {
    ...e.data,
    uri,
  });
}
