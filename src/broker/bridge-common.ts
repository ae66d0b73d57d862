// What both directions of the bridge share: who a caller is (the pool key's first part), how a
// request is forwarded on an SDK client (results passed through as the upstream gave them), how an
// upstream that forgot a session shows, the limits, and the metrics they report.
import { createHash, randomUUID } from 'node:crypto';
import type { Client, ProgressCallback, RequestOptions, StandardSchemaV1 } from '@modelcontextprotocol/client';
import { SERVER_INFO_META_KEY } from '@modelcontextprotocol/client';
import type { BrokerExchange } from './web-exchange.ts';

export { PROCESS } from './instance.ts';

export interface BridgeLimits {
  /** Upstream sessions per caller (principal + declared client identity). */
  sessionsPerCaller: number;
  /** Upstream sessions (or bridged client sessions) in all. */
  maxSessions: number;
  /** An upstream session with nothing in flight is closed after this long (ms). */
  sessionIdle: number;
  /** Calls parked waiting for their caller's input, in all. */
  maxPending: number;
  /** How long a parked call waits for its caller's next round (ms). */
  inputTimeout: number;
  /** How long a parked call keeps its upstream session against other callers' need (ms). */
  inputHold: number;
}

export type BridgeDirection = 'modern-to-legacy' | 'legacy-to-modern';

export interface BridgeMetrics {
  bridged(route: string, direction: BridgeDirection): void;
  bridgeSessions(route: string, n: number): void;
}

/** The key prefix of a caller who showed nothing: its key is new for each request (see callerKey). */
export const ANONYMOUS = 'anon:';

/**
 * The caller upstream state belongs to (the one owner rule of every broker): the authenticated
 * principal, or on a route that authenticates nobody, the credential the client sent (hashed), so
 * two bearers never share. A caller who shows neither is nobody twice: each request gets a key of
 * its own, so its upstream session serves it alone (a 2025 session it minted is owned by its
 * token, the session itself; a parked round by its sealed requestState).
 */
export function callerKey(ex: BrokerExchange): string {
  if (ex.principal) return `p:${ex.principal.key}`;
  const auth = ex.req.headers.authorization;
  return auth
    ? `a:${createHash('sha256').update(auth).digest('base64url').slice(0, 22)}`
    : `${ANONYMOUS}${randomUUID()}`;
}

export const isAnonymous = (key: string): boolean => key.startsWith(ANONYMOUS);

/** Accepts any result: the bridge passes what the upstream answered; the caller's SDK validates it. */
export const ANY_RESULT: StandardSchemaV1<unknown> = {
  '~standard': { version: 1, vendor: 'sluice', validate: (value: unknown) => ({ value }) },
};

export interface ForwardOptions {
  signal: AbortSignal;
  onprogress?: ProgressCallback | undefined;
  /** Use the SDK's callTool (a modern upstream: it mirrors x-mcp-header arguments into Mcp-Param-* headers). */
  typedCall?: boolean;
}

/** One request on `client`; the SDK's own progress token replaces the caller's (progress returns by onprogress). */
export async function forwardCall(
  client: Client,
  req: { method: string; params?: Record<string, unknown> },
  opts: ForwardOptions,
): Promise<unknown> {
  const params = withoutProgressToken(req.params);
  const options: RequestOptions = {
    signal: opts.signal,
    // The caller's own deadline governs; the SDK's 60 s default would cut long tool calls.
    timeout: 24 * 3600_000,
    ...(opts.onprogress ? { onprogress: opts.onprogress, resetTimeoutOnProgress: true } : {}),
  };
  if (opts.typedCall && req.method === 'tools/call' && typeof params?.['name'] === 'string')
    return client.callTool({ ...params, name: params['name'] }, options);
  return client.request({ method: req.method, ...(params ? { params } : {}) }, ANY_RESULT, options);
}

function withoutProgressToken(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const meta = params?.['_meta'] as Record<string, unknown> | undefined;
  if (!params || !meta || !('progressToken' in meta)) return params;
  const { progressToken: _drop, ...rest } = meta;
  const out = { ...params };
  if (Object.keys(rest).length) out['_meta'] = rest;
  else delete out['_meta'];
  return out;
}

/** The upstream answered 404 for the session: it expired or the server restarted. */
export function isSessionGone(err: unknown): boolean {
  const e = err as { data?: { status?: unknown }; status?: unknown } | undefined;
  return e?.data?.status === 404 || e?.status === 404;
}

/**
 * Upstream progress relayed to the caller's own token, in order; `sent()` resolves once all of it
 * is out, so the result follows it (a client drops progress that arrives after its answer).
 */
export function relayProgress(
  progressToken: unknown,
  notify: (n: { method: string; params: Record<string, unknown> }) => Promise<void>,
): { onprogress: ((p: Record<string, unknown>) => void) | undefined; sent: () => Promise<unknown> } {
  let told: Promise<unknown> = Promise.resolve();
  return {
    onprogress:
      progressToken === undefined
        ? undefined
        : (p) =>
            (told = told.then(() =>
              notify({ method: 'notifications/progress', params: { ...p, progressToken } }).catch(() => undefined),
            )),
    sent: () => told,
  };
}

/** What only a 2026-07-28 result has: a 2025 client of a 2026-07-28 server never sees it. */
const MODERN_ONLY = ['resultType', 'ttlMs', 'cacheScope'] as const;

/** A 2026-07-28 server's result as a 2025 server would have written it (its cache hints and serverInfo stamp gone). */
export function legacyResult(result: unknown): unknown {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return result;
  const r = result as Record<string, unknown>;
  const meta = r['_meta'] as Record<string, unknown> | undefined;
  const stamped = typeof meta === 'object' && meta !== null && SERVER_INFO_META_KEY in meta;
  if (!stamped && !MODERN_ONLY.some((k) => k in r)) return result;
  const out = { ...r };
  for (const k of MODERN_ONLY) delete out[k];
  if (stamped) {
    const { [SERVER_INFO_META_KEY]: _stamp, ...rest } = meta;
    if (Object.keys(rest).length) out['_meta'] = rest;
    else delete out['_meta'];
  }
  return out;
}

const SEVERITY = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * Whether a 2026-07-28 request asked to hear a log message of this level: it names its threshold
 * in its envelope (`io.modelcontextprotocol/logLevel`) and hears nothing it did not ask for.
 */
export function logWanted(threshold: unknown, params: Record<string, unknown> | undefined): boolean {
  if (typeof threshold !== 'string') return false;
  const at = SEVERITY.indexOf(threshold);
  const level = SEVERITY.indexOf(String(params?.['level']));
  return at >= 0 && level >= at;
}
