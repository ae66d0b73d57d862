// Payload logging for routes that opt in (routes[].logPayloads): each JSON-RPC message of an
// exchange — the request, a JSON response, every SSE event — is logged once, redacted by the
// route's rules, as {"payload": "request" | "response" | "event", route, rpcMethod, session (a
// hash), message}. Only sampled exchanges are logged. Non-JSON SSE data (the HTTP+SSE
// `endpoint` event carries a session URL) is logged by event name and size only.
import { CappedSseReader } from '../transport/sse-capped-reader.ts';
import type { RouteConfig } from '../config/schema.ts';
import { hashSessionId } from '../observability/access-log.ts';
import { Redactor } from '../observability/redact.ts';
import type { BodyTransform } from '../transport/body-transform.ts';
import {
  clientSessionOf,
  type DispatchedExchange,
  type Exchange,
  type ResponseStage,
  type RoutedExchange,
} from './exchange.ts';

/** JSON response bodies above this are logged by size only. */
const MAX_JSON_BODY = 1024 * 1024;

const redactors = new WeakMap<RouteConfig, Redactor>();

function redactorFor(ex: RoutedExchange): Redactor {
  const config = ex.route.config;
  let r = redactors.get(config);
  if (!r) {
    const p = config.logPayloads;
    r = new Redactor(
      {
        fields: p.redactFields,
        paths: p.redactPaths,
        hashFields: p.hashFields,
        hashPaths: p.hashPaths,
        detectors: p.detectors,
        maxString: p.maxString,
        maxArray: p.maxArray,
      },
      ex.ctx.logHashKey,
    );
    redactors.set(config, r);
  }
  return r;
}

export function logsPayloads(ex: Exchange): boolean {
  return ex.sampled && ex.route !== undefined && ex.route.config.logPayloads.enabled;
}

function write(ex: Exchange, payload: 'request' | 'response' | 'event', fields: Record<string, unknown>): void {
  ex.ctx.log.info(
    {
      payload,
      route: ex.route?.path,
      rpcMethod: ex.rpc?.method,
      session: hashSessionId(clientSessionOf(ex)),
      ...fields,
    },
    'payload',
  );
}

export function logRequestPayload(ex: RoutedExchange, message: unknown): void {
  write(ex, 'request', { message: redactorFor(ex).redact(message) });
}

const EMPTY = Buffer.alloc(0);

/** The last response stage: sees the body exactly as the client gets it (after every rewrite). */
export const tapPayloads: ResponseStage = (ex, head) => {
  if (logsPayloads(ex)) head.transforms.push(new ResponseTap(ex, head.sse));
};

/** Sees the response body as it goes to the client and logs its messages. */
export class ResponseTap implements BodyTransform {
  private readonly ex: DispatchedExchange;
  private readonly parser: CappedSseReader | undefined;
  private readonly decoder = new TextDecoder();
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(ex: DispatchedExchange, sse: boolean) {
    this.ex = ex;
    this.parser = sse
      ? new CappedSseReader(MAX_JSON_BODY, (e) => {
          if (e.data === '') return; // priming events (id only) carry no message
          if (e.data === undefined)
            return write(ex, 'event', { event: e.event, bytes: e.size, message: '[not logged: event over 1 MiB]' });
          let message: unknown;
          try {
            message = JSON.parse(e.data);
          } catch {
            return write(ex, 'event', { event: e.event ?? 'message', bytes: Buffer.byteLength(e.data) });
          }
          write(ex, 'event', {
            ...(e.event !== 'message' ? { event: e.event } : {}),
            message: redactorFor(ex).redact(message),
          });
        })
      : undefined;
  }

  /** Observes: the bytes go on unchanged. */
  push(chunk: Buffer): Buffer {
    if (this.parser) {
      this.parser.feed(this.decoder.decode(chunk, { stream: true }));
      return chunk;
    }
    this.size += chunk.length;
    if (this.size <= MAX_JSON_BODY) this.chunks.push(chunk);
    return chunk;
  }

  end(): Buffer {
    this.logBody();
    return EMPTY;
  }

  private logBody(): void {
    if (this.parser) return;
    if (this.size === 0) return;
    if (this.size > MAX_JSON_BODY)
      return write(this.ex, 'response', { bytes: this.size, message: '[not logged: body over 1 MiB]' });
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return write(this.ex, 'response', { bytes: this.size, message: '[not JSON]' });
    }
    write(this.ex, 'response', { status: this.ex.res.statusCode, message: redactorFor(this.ex).redact(message) });
  }
}
