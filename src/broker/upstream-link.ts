// Sluice as an MCP client of one upstream, on the official SDK v2 client: where the upstream is
// (an HTTP URL reached through the route's guarded connector, or a stdio child Sluice runs), which
// era it speaks (found the way the spec tells clients to: `server/discover`, then `initialize`,
// then HTTP+SSE), and a client connected in that era that speaks for one downstream caller (its
// client info and capabilities, so the upstream asks only for what that caller can answer).
import { Client, SSEClientTransport, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type {
  ClientCapabilities,
  DiscoverResult,
  FetchLike,
  InMemoryResponseCacheStore,
  ResultTypeMap,
  SSEClientTransportOptions,
  Transport,
} from '@modelcontextprotocol/client';
import { fetch as undiciFetch, type Dispatcher, type RequestInit as UndiciInit } from 'undici';
import type { StdioConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { ChildTransport } from './child-transport.ts';
import type { ProcessSlots } from './process-slots.ts';
import { cameStandalone, markingStandalone } from './standalone-stream.ts';

export type { FetchLike };

/**
 * The one fetch every SDK client Sluice opens upstream over HTTP uses: undici's, on `agent` (the
 * route's guarded connector, the gateway's timeouts). undici's Response is the WHATWG one the SDK
 * reads; only their type declarations differ.
 */
export function guardedFetch(agent: Dispatcher): FetchLike {
  return (url, init) =>
    undiciFetch(url, { ...(init as UndiciInit), dispatcher: agent }) as unknown as Promise<Response>;
}

/** Client info and capabilities of the caller a connection speaks for. */
export interface CallerIdentity {
  info: { name: string; version: string; [k: string]: unknown };
  capabilities: Record<string, unknown>;
}

export type UpstreamEra = 'modern' | 'legacy' | 'http+sse';

/** What the era probe found: enough to connect again with no round trip, and to answer for the upstream. */
export interface Discovery {
  era: UpstreamEra;
  serverInfo: { name: string; version: string; [k: string]: unknown };
  capabilities: Record<string, unknown>;
  instructions: string | undefined;
  /** The modern upstream's discover result (the SDK's `prior`), for zero-round-trip connects. */
  discover: unknown;
}

export type UpstreamEndpoint =
  | { kind: 'http'; url: string; fetch: FetchLike; headers: () => Record<string, string> }
  /** A stdio child, counted in `slots` (its server's maxProcesses) for `caller` from spawn until reaped. */
  | { kind: 'stdio'; cfg: StdioConfig; log: Logger; maxLine: number; slots: ProcessSlots; caller: string | undefined }
  /** A server inside this process (a federated session served to a 2026-07-28 caller). */
  | { kind: 'memory'; open: () => Transport };

/** Server→client requests the upstream makes, and its notifications, for the caller to answer or hear. */
export interface UpstreamHandlers {
  /** `related` is false for a request the upstream sent outside any call (on its standalone stream). */
  request?(
    method: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
    related: boolean,
  ): Promise<unknown>;
  notification?(method: string, params: Record<string, unknown> | undefined): void;
  /** The connection closed (the child exited, the stream ended). */
  closed?(): void;
}

const ASKS = [
  ['sampling', 'sampling/createMessage'],
  ['elicitation', 'elicitation/create'],
  ['roots', 'roots/list'],
] as const;

function transportFor(ep: UpstreamEndpoint, era: UpstreamEra): Transport {
  if (ep.kind === 'stdio')
    return new ChildTransport(ep.cfg, { log: ep.log, maxLine: ep.maxLine, slots: ep.slots, caller: ep.caller });
  if (ep.kind === 'memory') return ep.open();
  const url = new URL(ep.url);
  const requestInit = { headers: ep.headers() };
  if (era === 'http+sse') {
    const sse = url.pathname.endsWith('/sse') ? url : new URL(`${url.pathname.replace(/\/+$/, '')}/sse`, url);
    // The event stream's GET goes through the same guarded fetch (eventsource's own fetch type).
    const eventSourceInit = { fetch: ep.fetch } as SSEClientTransportOptions['eventSourceInit'];
    return new SSEClientTransport(sse, { fetch: ep.fetch, requestInit, eventSourceInit });
  }
  return new StreamableHTTPClientTransport(url, { fetch: markingStandalone(ep.fetch), requestInit });
}

/** A connected client for `who`, answering the upstream's requests through `handlers`. */
export async function connectUpstream(
  ep: UpstreamEndpoint,
  found: Discovery,
  who: CallerIdentity,
  handlers: UpstreamHandlers,
  extra: { responseCacheStore?: InMemoryResponseCacheStore; signal?: AbortSignal } = {},
): Promise<Client> {
  const client = new Client(who.info, {
    capabilities: who.capabilities as ClientCapabilities,
    ...(extra.responseCacheStore ? { responseCacheStore: extra.responseCacheStore } : {}),
    // The bridge forwards what the upstream sends; the caller's own SDK validates it.
    enforceStrictCapabilities: false,
    ...(found.era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
  });
  for (const [cap, method] of ASKS) {
    if (who.capabilities[cap] === undefined || !handlers.request) continue;
    const ask = handlers.request;
    // The caller's answer passes as it came (its own SDK validated it when it made it).
    client.setRequestHandler(
      method,
      (req, ctx) =>
        ask(method, req.params, ctx.mcpReq.signal, !cameStandalone(req.params)) as Promise<
          ResultTypeMap[typeof method]
        >,
    );
  }
  if (handlers.notification) {
    const hear = handlers.notification;
    client.fallbackNotificationHandler = async (n) => hear(n.method, n.params as Record<string, unknown> | undefined);
  }
  client.onclose = () => handlers.closed?.();
  client.onerror = () => undefined;
  const prior =
    found.era === 'modern'
      ? { kind: 'modern' as const, discover: found.discover as DiscoverResult }
      : { kind: 'legacy' as const };
  try {
    await client.connect(transportFor(ep, found.era), { prior, ...(extra.signal ? { signal: extra.signal } : {}) });
  } catch (err) {
    // A half-made connection holds a stream or a child process: released before the error is told.
    await client.close().catch(() => undefined);
    throw err;
  }
  return client;
}

/**
 * Which era the upstream speaks, as a 2026-07-28 client finds out: `server/discover` (modern), else
 * `initialize` over Streamable HTTP (legacy), else the HTTP+SSE endpoint. The probe's own
 * connection is closed again (a legacy upstream's session is deleted).
 */
export async function discoverUpstream(ep: UpstreamEndpoint, timeoutMs: number): Promise<Discovery> {
  const probe = async (era: 'auto' | 'http+sse'): Promise<Discovery> => {
    const client = new Client(
      { name: 'sluice-bridge', version: '1' },
      {
        capabilities: {},
        ...(era === 'auto' ? { versionNegotiation: { mode: 'auto', probe: { timeoutMs } } } : {}),
      },
    );
    client.onerror = () => undefined;
    const transport = transportFor(ep, era === 'auto' ? 'legacy' : 'http+sse');
    try {
      await client.connect(transport, { timeout: timeoutMs });
      const modern = client.getProtocolEra() === 'modern';
      return {
        era: era === 'http+sse' ? 'http+sse' : modern ? 'modern' : 'legacy',
        serverInfo: (client.getServerVersion() ?? { name: 'upstream', version: '0' }) as Discovery['serverInfo'],
        capabilities: (client.getServerCapabilities() ?? {}) as Record<string, unknown>,
        instructions: client.getInstructions(),
        discover: modern ? client.getDiscoverResult() : undefined,
      };
    } finally {
      await endUpstream(client);
      // The probe's own stdio child is reaped before the answer is used.
      if (transport instanceof ChildTransport) await transport.gone;
    }
  };
  try {
    return await probe('auto');
  } catch (err) {
    if (ep.kind === 'stdio') throw err;
    try {
      return await probe('http+sse');
    } catch {
      throw err;
    }
  }
}

/** How long ending an upstream session (its DELETE) may take before the client is closed anyway. */
const END_SESSION_MS = 2000;

/**
 * Ends `client`'s upstream session as a polite client does (DELETE with its Mcp-Session-Id, on a
 * sessionful HTTP upstream), then closes it: a server is never left holding sessions Sluice let go.
 */
export async function endUpstream(client: Client): Promise<void> {
  const t = client.transport as { sessionId?: string; terminateSession?: () => Promise<void> } | undefined;
  if (t?.sessionId && t.terminateSession) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      t.terminateSession().catch(() => undefined),
      new Promise<void>((r) => (timer = setTimeout(r, END_SESSION_MS))),
    ]);
    clearTimeout(timer);
  }
  await client.close().catch(() => undefined);
}
