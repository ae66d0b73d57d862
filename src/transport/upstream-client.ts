// The upstream HTTP client: one undici Agent for the whole gateway. Redirects are never
// followed (undici's request() returns 3xx as is), no HTTP(S)_PROXY is consulted, and the body
// timeout is off because Sluice runs its own idle timer that heartbeats can coexist with.
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
  headers: Record<string, string | string[]>;
  body: Buffer | undefined;
  signal: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

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

  async request(r: UpstreamRequest): Promise<UpstreamResponse> {
    try {
      return await this.agent.request({
        origin: r.origin,
        path: r.path,
        method: r.method as Dispatcher.HttpMethod,
        headers: r.headers,
        body: r.body,
        signal: r.signal,
      });
    } catch (err) {
      throw classifyUpstreamError(err, r.signal);
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

/** Turn an undici / socket failure into the catalogue: timeouts 504, everything else 502. */
export function classifyUpstreamError(err: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? err;
  if (err instanceof undiciErrors.ConnectTimeoutError) return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'connect timed out', { cause: err });
  if (err instanceof undiciErrors.HeadersTimeoutError) return new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no response headers in time', { cause: err });
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', code ?? (err as Error).message, { cause: err });
}
