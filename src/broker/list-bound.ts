// A federated server's list answers, bounded in bytes (`federation.maxListBytes`): a server that
// answers tools/list with 200 MB is refused with an error naming it, read no further than the
// bound, instead of being parsed, renamed and merged into the gateway's memory. A stdio server's
// answers are bounded by its line limit instead.
import type { FetchLike } from './upstream-link.ts';

/** A list request, as the SDK writes it (its method first). */
const LIST_REQUEST = /"method"\s*:\s*"(?:tools|prompts|resources|resources\/templates|tasks)\/list"/;

export class ListTooLarge extends Error {}

export function boundedLists(
  fetch: FetchLike,
  maxBytes: () => number,
  server: string,
  warn: (err: ListTooLarge) => void,
): FetchLike {
  return async (url, init) => {
    const res = await fetch(url, init);
    const sent = init?.body;
    if (typeof sent !== 'string' || !LIST_REQUEST.test(sent.slice(0, 256)) || !res.body) return res;
    const max = maxBytes();
    const tooLarge = (): ListTooLarge => {
      const err = new ListTooLarge(
        `federated server "${server}" answered a list larger than ${max} bytes (federation.maxListBytes)`,
      );
      warn(err);
      return err;
    };
    if (Number(res.headers.get('content-length') ?? 0) > max) {
      await res.body.cancel().catch(() => undefined);
      throw tooLarge();
    }
    let seen = 0;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          seen += chunk.byteLength;
          if (seen > max) out.error(tooLarge());
          else out.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
