// A real MCP upstream built from the official SDKs, serving all three wire shapes on one port:
//   /mcp           sessionful Streamable HTTP (SDK v1, with resumability) and stateless
//                  2026-07-28 (SDK v2 createMcpHandler), told apart by the SDK's own classifier
//   /sse, /messages HTTP+SSE (SDK v1 SSEServerTransport)
// The bundled demo and the test suite's reference upstream are both made with it.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { McpServer as McpServerV1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  createMcpHandler,
  isLegacyRequest,
  McpServer as McpServerV2,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import { EventBuffer } from '../core/event-buffer.ts';

export interface UpstreamKitOptions {
  name: string;
  /** Adds tools/resources/prompts to a fresh SDK v1 server (sessionful eras and HTTP+SSE). */
  registerV1: (server: McpServerV1) => void;
  /** Adds the same surface to a fresh SDK v2 server (2026-07-28), made for one HTTP request. */
  registerV2: (server: McpServerV2, request: Request | undefined) => void;
  /** Path of the Streamable HTTP endpoint. Default /mcp. */
  mcpPath?: string;
  /** Answer requests to an unknown session with 404 (spec) rather than 400. Default true. */
  enableJsonResponse?: boolean;
  /** SSE `retry:` hint for resumable streams (2025-11-25 polling). */
  retryInterval?: number;
  /**
   * Refuse requests whose Host or Origin is not loopback (the SDK's DNS-rebinding defaults).
   * Default true; the probe turns it off because it must answer whatever stands in front.
   */
  loopbackOnly?: boolean;
  /** Sees every request before it is handled (the probe records what reached it). */
  onRequest?: (req: IncomingMessage) => void;
  /** Extra routes, tried before the MCP paths; return true when handled. */
  extraRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Leave out the SDKs' `X-Accel-Buffering: no` (default false). The probe does, so what the
   * doctor measures is the proxy's own buffering, not nginx obeying the upstream's header.
   */
  omitAccelBuffering?: boolean;
  /**
   * Which eras it serves: both (default), only 2025-era sessions and HTTP+SSE ('legacy': a modern
   * request gets the v1 transport's answer), or only 2026-07-28 ('modern': 2025 requests are
   * refused with the SDK's unsupported-version error, no HTTP+SSE).
   */
  eras?: 'both' | 'legacy' | 'modern';
}

export interface UpstreamKit {
  server: Server;
  url: string;
  port: number;
  /** Live v1 sessions, for tests that push notifications on the standalone GET stream. */
  sessions: Map<string, { transport: StreamableHTTPServerTransport; server: McpServerV1 }>;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<{ raw: Buffer; json: unknown }> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  const raw = Buffer.concat(chunks);
  try {
    return { raw, json: raw.length ? JSON.parse(raw.toString('utf8')) : undefined };
  } catch {
    return { raw, json: undefined };
  }
}

function jsonError(res: ServerResponse, status: number, code: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

async function sendWebResponse(res: ServerResponse, response: Response, omitAccelBuffering: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((v, k) => {
    if (!(omitAccelBuffering && k === 'x-accel-buffering')) headers[k] = v;
  });
  res.writeHead(response.status, headers);
  res.flushHeaders();
  if (!response.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(response.body as WebReadableStream);
  res.on('close', () => body.destroy());
  body.on('error', () => res.destroy());
  body.pipe(res);
}

/** Drops X-Accel-Buffering from whatever the SDK writes as the head of `res`. */
function withoutAccelBuffering(res: ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  const strip = (h: unknown): unknown => {
    if (!h || typeof h !== 'object' || Array.isArray(h)) return h;
    return Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'x-accel-buffering'));
  };
  res.writeHead = ((...args: unknown[]) => {
    res.removeHeader('x-accel-buffering');
    return writeHead(...args.map(strip));
  }) as ServerResponse['writeHead'];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopbackAuthority(host: string | undefined): boolean {
  if (!host) return false;
  try {
    return LOOPBACK_NAMES.has(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    return LOOPBACK_NAMES.has(new URL(origin).hostname);
  } catch {
    return false;
  }
}

export async function startUpstreamKit(opts: UpstreamKitOptions, port = 0, host = '127.0.0.1'): Promise<UpstreamKit> {
  const mcpPath = opts.mcpPath ?? '/mcp';
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServerV1 }>();
  const sseSessions = new Map<string, SSEServerTransport>();
  const eventStore = new EventBuffer(10_000, 64 * 1024 * 1024);
  const info = { name: opts.name, version: '1.0.0' };

  const modern: McpHttpHandler = createMcpHandler(
    (ctx) => {
      const s = new McpServerV2(info, { capabilities: { logging: {} } });
      opts.registerV2(s, ctx?.requestInfo);
      return s;
    },
    { legacy: 'reject' },
  );

  const newV1 = (): McpServerV1 => {
    const s = new McpServerV1(info, { capabilities: { logging: {} } });
    opts.registerV1(s);
    return s;
  };

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { raw, json } = req.method === 'POST' ? await readJson(req) : { raw: Buffer.alloc(0), json: undefined };
    const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    const webReq = new Request(url, {
      method: req.method ?? 'GET',
      headers,
      body: req.method === 'POST' ? new Uint8Array(raw) : undefined,
    });
    const eras = opts.eras ?? 'both';
    if (eras === 'modern' || (eras === 'both' && !(await isLegacyRequest(webReq)))) {
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const webReq2 = new Request(url, {
        method: req.method ?? 'GET',
        headers,
        body: req.method === 'POST' ? new Uint8Array(raw) : undefined,
        signal: ac.signal,
      });
      await sendWebResponse(res, await modern.fetch(webReq2), opts.omitAccelBuffering ?? false);
      return;
    }
    const sid = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    if (sessionId) {
      const s = sessions.get(sessionId);
      if (!s) return jsonError(res, 404, -32001, 'Session not found');
      await s.transport.handleRequest(req, res, json);
      return;
    }
    const isInit =
      req.method === 'POST' &&
      typeof json === 'object' &&
      json !== null &&
      (json as { method?: string }).method === 'initialize';
    if (!isInit) return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    const server = newV1();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore,
      enableJsonResponse: opts.enableJsonResponse ?? false,
      ...(opts.retryInterval !== undefined ? { retryInterval: opts.retryInterval } : {}),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, json);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS-rebinding protection as the SDK's localhost defaults do it: a loopback upstream only
    // answers requests addressed to a loopback name, from no origin or a loopback origin.
    opts.onRequest?.(req);
    if (opts.extraRoutes?.(req, res)) return;
    if (opts.omitAccelBuffering) withoutAccelBuffering(res);
    if (
      (opts.loopbackOnly ?? true) &&
      (!isLoopbackAuthority(req.headers.host) ||
        (req.headers.origin !== undefined && !isLoopbackOrigin(req.headers.origin)))
    ) {
      return jsonError(res, 403, -32000, 'Forbidden: invalid Host or Origin');
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === mcpPath) return handleMcp(req, res);
    if (path === '/sse' && req.method === 'GET' && opts.eras !== 'modern') {
      const transport = new SSEServerTransport('/messages', res);
      sseSessions.set(transport.sessionId, transport);
      res.on('close', () => sseSessions.delete(transport.sessionId));
      await newV1().connect(transport);
      return;
    }
    if (path === '/messages' && req.method === 'POST') {
      const id = new URL(req.url ?? '/', 'http://x').searchParams.get('sessionId') ?? '';
      const transport = sseSessions.get(id);
      if (!transport) return void res.writeHead(404).end('Unknown session');
      const { json } = await readJson(req);
      await transport.handlePostMessage(req, res, json);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) jsonError(res, 500, -32603, (err as Error).message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    port: addr.port,
    url: `http://${hostPart}:${addr.port}${mcpPath}`,
    sessions,
    async close() {
      await modern.close();
      for (const s of sessions.values()) await s.transport.close().catch(() => {});
      for (const t of sseSessions.values()) await t.close().catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
