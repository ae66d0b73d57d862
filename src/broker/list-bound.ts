// A federated server's list answers, bounded in bytes (`federation.maxListBytes`): an answer
// larger than the bound is read no further and replaced by a JSON-RPC error naming the server, so
// the session's list answers at once without it (or with that error, when it was the only server
// asked) instead of parsing, renaming and merging 200 MB into the gateway's memory. The refusal is
// remembered for a while (`federation.listCache`): the server is not asked for that list again
// meanwhile, so a client listing in a loop costs it nothing. A stdio server's answers are bounded
// by its line limit instead.
import type { FetchLike } from './upstream-link.ts';

/** A list request, as the SDK writes it (its method first). */
const LIST_REQUEST = /"method"\s*:\s*"((?:tools|prompts|resources|resources\/templates|tasks)\/list)"/;

export interface ListBound {
  maxBytes(): number;
  /** How long a refusal stands (ms). */
  rememberMs(): number;
  /** Told once per refusal made from an answer (not per remembered one). */
  refused(message: string): void;
}

export function boundedLists(fetch: FetchLike, server: string, bound: ListBound): FetchLike {
  const refusedUntil = new Map<string, number>();
  return async (url, init) => {
    const sent = init?.body;
    const list = typeof sent === 'string' ? LIST_REQUEST.exec(sent.slice(0, 256)) : null;
    if (!list || typeof sent !== 'string') return fetch(url, init);
    const method = list[1] as string;
    const max = bound.maxBytes();
    const message = `federated server "${server}" answered ${method} with more than ${max} bytes (federation.maxListBytes)`;
    const refusal = (): Response => errorResponse(sent, message, server);
    if ((refusedUntil.get(method) ?? 0) > Date.now()) return refusal();
    const refuse = (): Response => {
      refusedUntil.set(method, Date.now() + bound.rememberMs());
      bound.refused(message);
      return refusal();
    };
    const res = await fetch(url, init);
    if (!res.ok || !res.body) return res;
    if (Number(res.headers.get('content-length') ?? 0) > max) {
      await res.body.cancel().catch(() => undefined);
      return refuse();
    }
    // Read whole (at most `max` bytes), then handed to the SDK: nothing of a refused answer is parsed.
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let seen = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += value.byteLength;
      if (seen > max) {
        await reader.cancel().catch(() => undefined);
        return refuse();
      }
      chunks.push(value);
    }
    refusedUntil.delete(method);
    return new Response(Buffer.concat(chunks), {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
}

/** The JSON-RPC error the SDK client receives in place of the server's answer. */
function errorResponse(sent: string, message: string, server: string): Response {
  let id: unknown = null;
  try {
    id = (JSON.parse(sent) as { id?: unknown }).id ?? null;
  } catch {
    // an unreadable request still gets an answer
  }
  return new Response(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message, data: { server } } }), {
    status: 200,
    headers: { 'content-type': 'application/json' },
  });
}
