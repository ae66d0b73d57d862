// A 2025 upstream sends a request that belongs to one of its client's calls on that call's POST
// stream, and one that belongs to no call (server-everything's roots/list 350 ms after initialize)
// on the session's standalone GET stream. The SDK client hands both to the same request handler
// without saying which stream it came by, so a call running at that moment would take the second
// as its own and ask its 2026-07-28 caller for it. The fetch the SDK's transport is given marks
// each request that arrives on the GET stream in its `_meta`, and the handler reads the mark off.
import { createParser } from 'eventsource-parser';
import type { FetchLike } from '@modelcontextprotocol/client';

const MARK = 'io.sluice/standalone-stream';

/** `fetch`, with each JSON-RPC request on a GET (standalone) event stream marked as outside any call. */
export function markingStandalone(fetch: FetchLike): FetchLike {
  return async (url, init) => {
    const res = await fetch(url, init);
    const type = res.headers.get('content-type') ?? '';
    if ((init?.method ?? 'GET') !== 'GET' || !res.ok || !res.body || !type.includes('text/event-stream')) return res;
    let out: TransformStreamDefaultController<string> | undefined;
    const parser = createParser({
      onEvent: (e) =>
        out?.enqueue(
          `${e.id !== undefined ? `id: ${e.id}\n` : ''}${e.event ? `event: ${e.event}\n` : ''}data: ${mark(e.data)}\n\n`,
        ),
      onRetry: (ms) => out?.enqueue(`retry: ${ms}\n\n`),
    });
    const marked = res.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(
        new TransformStream<string, string>({
          transform(text, controller) {
            out = controller;
            parser.feed(text);
          },
        }),
      )
      .pipeThrough(new TextEncoderStream());
    return new Response(marked, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

function mark(data: string): string {
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return data.replace(/\n/g, '\ndata: ');
  }
  const m = msg as { method?: unknown; id?: unknown; params?: Record<string, unknown> };
  if (typeof m !== 'object' || m === null || typeof m.method !== 'string' || m.id === undefined)
    return JSON.stringify(msg);
  const params = m.params ?? {};
  m.params = { ...params, _meta: { ...(params['_meta'] as object | undefined), [MARK]: true } };
  return JSON.stringify(m);
}

/** Whether a request's params carry the mark; the mark is taken off (the caller never sees it). */
export function cameStandalone(params: Record<string, unknown> | undefined): boolean {
  const meta = params?.['_meta'] as Record<string, unknown> | undefined;
  if (!meta?.[MARK]) return false;
  delete meta[MARK];
  if (Object.keys(meta).length === 0) delete params?.['_meta'];
  return true;
}
