// Small HTTP exchanges Sluice makes on its own behalf (issuer metadata, JWKS, OAuth tokens, an
// upstream's protected-resource metadata), through the same guarded client as proxied traffic:
// the address policy judges every connect, redirects are not followed, answers are capped.
import type { IncomingHttpHeaders } from 'node:http';
import { SluiceError } from '../core/errors.ts';
import type { AddressPolicy } from '../security/address-policy.ts';
import type { UpstreamTls } from '../core/upstream-tls.ts';
import type { UpstreamClient } from './upstream-client.ts';

export interface SmallRequest {
  url: string;
  policy: AddressPolicy;
  tls?: UpstreamTls | undefined;
  method?: 'GET' | 'POST';
  /** Flat [name, value, …]. */
  headers?: string[];
  body?: Buffer;
  /** Largest answer read. Default 256 KiB. */
  maxBytes?: number;
  /** Whole exchange. Default 5 s. */
  timeoutMs?: number;
}

export interface SmallResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function fetchSmall(client: UpstreamClient, r: SmallRequest): Promise<SmallResponse> {
  const url = new URL(r.url);
  const max = r.maxBytes ?? 256 * 1024;
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    // Declared before dispatch: a refusal by the address policy can be reported synchronously.
    let timer: NodeJS.Timeout | undefined = undefined;
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ status, headers, body: Buffer.concat(chunks) });
    };
    const call = client.dispatch(
      {
        origin: url.origin,
        policy: r.policy,
        tls: r.tls,
        path: url.pathname + url.search,
        method: r.method ?? 'GET',
        headers: ['host', url.host, 'accept', 'application/json', ...(r.headers ?? [])],
        body: r.body,
      },
      {
        onHeaders: (s, h) => {
          status = s;
          headers = h;
        },
        onData: (chunk) => {
          size += chunk.length;
          if (size > max) {
            call.abort(new Error('too large'));
            finish(new Error(`${url.origin}${url.pathname}: answer larger than ${max} bytes`));
            return;
          }
          chunks.push(chunk);
        },
        onEnd: () => finish(undefined),
        onError: (err) =>
          finish(
            err instanceof SluiceError
              ? new Error(`${url.origin}${url.pathname}: ${err.message}`, { cause: err })
              : (err as Error),
          ),
      },
    );
    if (done) return;
    timer = setTimeout(() => {
      call.abort(new Error('timeout'));
      finish(new Error(`${url.origin}${url.pathname}: no answer within ${r.timeoutMs ?? 5000} ms`));
    }, r.timeoutMs ?? 5_000);
  });
}

/** GET JSON; a non-2xx status or a body that is not JSON is an error naming the URL. */
export async function fetchJson(client: UpstreamClient, url: string, policy: AddressPolicy): Promise<unknown> {
  const res = await fetchSmall(client, { url, policy });
  if (res.status < 200 || res.status > 299) throw new Error(`${url}: HTTP ${res.status}`);
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new Error(`${url}: not JSON`);
  }
}
