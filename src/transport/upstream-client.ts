// The upstream HTTP client: one undici Agent for the whole gateway, driven through its low-level
// dispatch API. Each exchange gets one small handler object, with no AbortController, no
// Readable body and no async iterator: a per-request AbortController plus stream plumbing
// roughly doubles a Node proxy's CPU per small request (shared/reference/perf-anchors.md §3.6),
// and every such object is held for the life of an idle SSE stream.
// Redirects are never followed (dispatch returns 3xx as is), no HTTP(S)_PROXY is consulted, and
// the body timeout is off because Sluice runs its own idle timer that heartbeats coexist with.
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { SluiceError } from '../core/errors.ts';

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
}

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: string;
  /** Flat [name, value, name, value, …] list, as undici takes it without another copy. */
  headers: string[];
  body: Buffer | undefined;
}

/** What an exchange hears back. onError receives an error already mapped to the catalogue. */
export interface UpstreamListener {
  onHeaders(statusCode: number, headers: IncomingHttpHeaders): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: unknown): void;
}

/** The exchange's handle on its upstream request. */
export interface UpstreamCall {
  /** Stop the request (before or after headers); the listener then hears nothing more. */
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

class Call implements Dispatcher.DispatchHandler, UpstreamCall {
  private controller: Dispatcher.DispatchController | undefined;
  private aborted: Error | undefined;
  private readonly listener: UpstreamListener;

  constructor(listener: UpstreamListener) {
    this.listener = listener;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Aborted while still queued or connecting: undici offers no handle until now.
    if (this.aborted) controller.abort(this.aborted);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (!this.aborted) this.listener.onHeaders(statusCode, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.aborted) this.listener.onData(chunk);
  }

  onResponseEnd(): void {
    if (!this.aborted) this.listener.onEnd();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (!this.aborted) this.listener.onError(classifyUpstreamError(err));
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = reason;
    this.controller?.abort(reason);
  }

  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }
}

export class UpstreamClient {
  private readonly agent: Agent;

  constructor(opts: UpstreamClientOptions) {
    this.agent = new Agent({
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: 0,
      keepAliveTimeout: 4_000,
    });
  }

  dispatch(r: UpstreamRequest, listener: UpstreamListener): UpstreamCall {
    const call = new Call(listener);
    try {
      this.agent.dispatch({ origin: r.origin, path: r.path, method: r.method as Dispatcher.HttpMethod, headers: r.headers, body: r.body }, call);
    } catch (err) {
      queueMicrotask(() => call.onResponseError(undefined as never, err as Error));
    }
    return call;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

/** Turn an undici / socket failure into the catalogue: timeouts 504, everything else 502. */
export function classifyUpstreamError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  if (err instanceof undiciErrors.ConnectTimeoutError) return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'connect timed out', { cause: err });
  if (err instanceof undiciErrors.HeadersTimeoutError) return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no response headers in time', { cause: err });
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', code ?? (err as Error).message, { cause: err });
}
