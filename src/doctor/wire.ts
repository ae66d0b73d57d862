// The doctor's HTTP client: one exchange at a time, observed closely. It keeps what a check
// needs to judge the path in front: the status and headers as they arrived, when the headers
// arrived, every SSE event and comment with its arrival time (after undoing any compression, so
// a compressed stream is still measured), and how the body ended (complete, stopped by the
// check, cut by the peer, timed out).
import { readFileSync } from 'node:fs';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, errors as undiciErrors, request } from 'undici';

export interface WireOptions {
  /** Accept any server certificate (self-signed test deployments). */
  insecure?: boolean;
  /** Extra CA certificates (PEM file) to trust. */
  caFile?: string;
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  /** ms after the request was sent. */
  at: number;
}

export interface Exchange {
  status: number;
  headers: Record<string, string>;
  /** ms after the request was sent. */
  headersAt: number;
  /** The decoded body of a non-SSE response (capped at MAX_BODY). */
  body: string;
  events: SseEvent[];
  /** Arrival times of SSE comment lines (heartbeats). */
  comments: number[];
  end: { at: number; how: 'complete' | 'stopped' | 'cut' | 'timeout'; error?: string };
  /** Wall clock (ms epoch) when the request was sent. */
  sentAt: number;
}

export interface ExchangeInit {
  method: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Whole exchange, headers and body. */
  timeoutMs: number;
  /** Called for each SSE event; return true to stop reading (the connection is closed). */
  onEvent?: (event: SseEvent) => boolean | void;
}

/** The target could not be reached at all: connect, DNS or TLS failure. */
export class WireError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

const MAX_BODY = 1024 * 1024;

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO|TLS|SSL|EPROTO|ERR_SSL/;

/** Says in words why a request never got an answer. */
export function describeNetworkError(err: unknown): WireError {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code ?? 'UNKNOWN';
  const message = e.cause?.message ?? e.message ?? String(err);
  if (code === 'ECONNREFUSED') return new WireError('connection refused: nothing listens there', code);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new WireError(`the name does not resolve (${code})`, code);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return new WireError('connection timed out', code);
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET')
    return new WireError(`the connection was closed before an answer (${message})`, code);
  if (TLS_CODES.test(code) || /certificate|ssl|tls/i.test(message)) {
    // OpenSSL's text ("…:SSL routines:func:reason:file:line") says it in its reason field.
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message.split('\n')[0];
    const hint = /wrong version number|packet length too long/.test(reason ?? '')
      ? ' (is it a plain-http port?)'
      : '; --ca FILE trusts a private CA, --insecure skips verification';
    return new WireError(`TLS error: ${reason} (${code})${hint}`, code);
  }
  return new WireError(`${message} (${code})`, code);
}

function decoderFor(encoding: string | undefined): NodeJS.ReadWriteStream | undefined {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

export class Wire {
  private readonly agent: Agent;

  constructor(opts: WireOptions = {}) {
    const ca = opts.caFile ? readFileSync(opts.caFile) : undefined;
    // Streams may stay silent for minutes by design (the idle checks): the exchange's own timer
    // bounds each request, not undici's.
    this.agent = new Agent({
      connect: { timeout: 10_000, rejectUnauthorized: !opts.insecure, ...(ca ? { ca } : {}) },
      headersTimeout: 0,
      bodyTimeout: 0,
      connections: 64,
    });
  }

  async exchange(url: URL, init: ExchangeInit): Promise<Exchange> {
    const started = performance.now();
    const sentAt = Date.now();
    const since = (): number => Math.round(performance.now() - started);
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, init.timeoutMs);
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method: init.method as 'POST',
        headers: init.headers,
        body: init.body,
        dispatcher: this.agent,
        signal: ac.signal,
      });
    } catch (err) {
      clearTimeout(timer);
      if (timedOut)
        return {
          status: 0,
          headers: {},
          headersAt: since(),
          body: '',
          events: [],
          comments: [],
          end: { at: since(), how: 'timeout', error: `no answer within ${init.timeoutMs} ms` },
          sentAt,
        };
      throw describeNetworkError(err);
    }
    const headersAt = since();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const out: Exchange = {
      status: res.statusCode,
      headers,
      headersAt,
      body: '',
      events: [],
      comments: [],
      end: { at: 0, how: 'complete' },
      sentAt,
    };
    const isSse = (headers['content-type'] ?? '').toLowerCase().includes('text/event-stream');
    let stopped = false;
    const parser = createParser({
      onEvent: (m: EventSourceMessage) => {
        const ev: SseEvent = {
          data: m.data,
          at: since(),
          ...(m.id !== undefined ? { id: m.id } : {}),
          ...(m.event !== undefined ? { event: m.event } : {}),
        };
        out.events.push(ev);
        if (init.onEvent?.(ev)) {
          stopped = true;
          ac.abort();
        }
      },
      onComment: () => void out.comments.push(since()),
    });
    const decoder = decoderFor(headers['content-encoding']);
    const chunks: Buffer[] = [];
    let size = 0;
    const take = (text: string): void => {
      if (isSse) parser.feed(text);
      else if (size < MAX_BODY) {
        chunks.push(Buffer.from(text));
        size += text.length;
      }
    };
    try {
      if (decoder) {
        const utf8 = new TextDecoder();
        decoder.on('data', (c: Buffer) => take(utf8.decode(c, { stream: true })));
        const done = new Promise<void>((resolve, reject) => {
          decoder.on('end', resolve);
          decoder.on('error', reject);
        });
        for await (const c of res.body) decoder.write(c as Buffer);
        decoder.end();
        await done;
      } else {
        const utf8 = new TextDecoder();
        for await (const c of res.body) take(utf8.decode(c as Buffer, { stream: true }));
      }
      out.end = { at: since(), how: 'complete' };
    } catch (err) {
      if (stopped) out.end = { at: since(), how: 'stopped' };
      else if (timedOut) out.end = { at: since(), how: 'timeout', error: `still open after ${init.timeoutMs} ms` };
      else out.end = { at: since(), how: 'cut', error: describeCut(err) };
    } finally {
      clearTimeout(timer);
      decoder?.removeAllListeners('data');
    }
    out.body = Buffer.concat(chunks).toString('utf8');
    return out;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

function describeCut(err: unknown): string {
  if (err instanceof undiciErrors.UndiciError) return `${err.message} (${err.code})`;
  const e = err as { message?: string; code?: string };
  return e.code ? `${e.message} (${e.code})` : (e.message ?? String(err));
}
