// The broker's side of an HTTP exchange: what it needs of the proxy's Exchange (nothing here
// imports proxy/), and the two conversions between Node's request/response and the web-standard
// Request/Response the SDK's server transports speak.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/** What the broker needs of an exchange (the proxy's Exchange satisfies it; nothing here imports proxy/). */
export interface BrokerExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request path below the route prefix, and the query ('?…' or ''). */
  readonly routeRest: string;
  readonly query: string;
  body: Buffer | undefined;
  /** The JSON-RPC body as the classify stage parsed it (undefined: no body). */
  readonly message?: unknown;
  readonly principal: { readonly key: string } | undefined;
  responseSessionId: string | undefined;
  /** What served it, for the access log: the child's command and pid. */
  brokerUpstream: string | undefined;
  /** Response body bytes sent (the access log's bytesOut). */
  bytesOut: number;
  /** The client's era, as the classify stage found it (stateless: a 2026-07-28 request). */
  readonly era?: 'http+sse' | 'sessionful' | 'stateless' | undefined;
  /** Set when the broker takes the exchange: no relay stage runs after it. */
  handedOff: boolean;
  /** The route's own credential for the upstream, in place of the client's token. */
  readonly upstreamCredential?: { header: string; value: string } | undefined;
}

export function isInitialize(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    (body as { method?: unknown }).method === 'initialize'
  );
}

export function webRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k.startsWith(':')) continue;
    headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  }
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
    signal,
  });
}

export function writeWebResponse(ex: BrokerExchange, answer: Response): void {
  const { res } = ex;
  if (res.destroyed) {
    void answer.body?.cancel();
    return;
  }
  const headers: Record<string, string> = {};
  answer.headers.forEach((v, k) => (headers[k] = v));
  res.writeHead(answer.status, headers);
  if (!answer.body) {
    res.end();
    return;
  }
  res.flushHeaders();
  const body = Readable.fromWeb(answer.body as WebReadableStream);
  body.on('data', (chunk: Buffer) => (ex.bytesOut += chunk.length));
  res.once('close', () => body.destroy());
  body.once('error', () => res.destroy());
  body.pipe(res);
}

/** A small JSON answer of the broker's own. */
export function writeJson(ex: BrokerExchange, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  ex.bytesOut += Buffer.byteLength(text);
  ex.res.writeHead(status, { 'content-type': 'application/json' }).end(text);
}

/** The request body as JSON, as the classify stage parsed it (never parsed twice), or undefined for none. */
export function parsedBody(ex: BrokerExchange): unknown {
  if (ex.message !== undefined) return ex.message;
  return ex.body && ex.body.length > 0 ? (JSON.parse(ex.body.toString('utf8')) as unknown) : undefined;
}
