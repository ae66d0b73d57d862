// The broker's side of an HTTP exchange: what it needs of the proxy's Exchange (nothing here
// imports proxy/), and the two conversions between Node's request/response and the web-standard
// Request/Response the SDK's server transports speak.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { BrokerExchange } from '../core/route-broker.ts';

export type { BrokerExchange } from '../core/route-broker.ts';

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

/**
 * Sends an SDK transport's answer. A POST's head waits for the first byte of its body, as the
 * relay's JSON head does: a call the upstream never starts answering is still the gateway's to
 * answer (504 at its deadline, from the hand-off), not a stream that is open and silent. An
 * answer that comes after the gateway has answered (a timeout, shutdown) is dropped.
 */
export function writeWebResponse(ex: BrokerExchange, answer: Response): void {
  const { res } = ex;
  if (res.destroyed || res.headersSent || res.writableEnded) {
    void answer.body?.cancel();
    return;
  }
  const headers: Record<string, string> = {};
  answer.headers.forEach((v, k) => (headers[k] = v));
  if (!answer.body) {
    res.writeHead(answer.status, headers).end();
    return;
  }
  const body = Readable.fromWeb(answer.body as WebReadableStream);
  const head = (): void => {
    res.writeHead(answer.status, headers);
    res.flushHeaders();
  };
  if (ex.req.method !== 'POST') head();
  // Written as it comes, never paused: the SDK's stream queues whatever it is given, so pausing
  // it would only move an unread backlog into the SDK. A client that leaves more than the
  // slow-client buffer unread, or stays behind for the stall time, is cut (as on the relay).
  const caps = ex.slowClient;
  let stall: NodeJS.Timeout | undefined;
  const cut = (): void => {
    caps?.cut(res.writableLength);
    res.destroy();
  };
  body.on('data', (chunk: Buffer) => {
    if (res.writableEnded || res.destroyed) return void body.destroy();
    if (!res.headersSent) head();
    ex.bytesOut += chunk.length;
    const flowing = res.write(chunk);
    if (caps && res.writableLength > caps.buffer) return cut();
    if (!flowing && caps && caps.stallMs > 0 && !stall) stall = setTimeout(cut, caps.stallMs);
  });
  res.on('drain', () => {
    clearTimeout(stall);
    stall = undefined;
  });
  res.once('close', () => {
    clearTimeout(stall);
    body.destroy();
  });
  body.once('error', () => res.destroy());
  body.once('end', () => {
    if (!res.headersSent) head();
    res.end();
  });
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
