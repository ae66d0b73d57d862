// federation.maxListBytes (list-bound.ts): a list answer over the bound becomes a JSON-RPC error
// naming the server, read no further, and the server is not asked again for a while.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundedLists } from '../../../src/broker/list-bound.ts';

const request = (method: string, id = 7): RequestInit => ({ method: 'POST', body: JSON.stringify({ method, params: {}, jsonrpc: '2.0', id }) });

function upstream(bytes: number, opts: { length?: boolean } = {}) {
  const seen = { calls: 0, pulled: 0 };
  const fetch = async (): Promise<Response> => {
    seen.calls++;
    let left = bytes;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (left <= 0) return c.close();
        const n = Math.min(left, 64 * 1024);
        left -= n;
        seen.pulled += n;
        c.enqueue(new Uint8Array(n).fill(0x61));
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: opts.length ? { 'content-length': String(bytes) } : {} });
  };
  return { fetch, seen };
}

describe('federation.maxListBytes', () => {
  it('an answer over the bound is a JSON-RPC error naming the server, the rest unread, and not asked again while remembered', async () => {
    const { fetch, seen } = upstream(10 * 1024 * 1024);
    const told: string[] = [];
    const bounded = boundedLists(fetch as never, 'huge', { maxBytes: () => 1024 * 1024, rememberMs: () => 60_000, refused: (m) => told.push(m) });
    const answer = (await (await bounded('http://x/mcp', request('tools/list'))).json()) as { id: number; error: { code: number; message: string; data: { server: string } } };
    assert.equal(answer.id, 7);
    assert.equal(answer.error.code, -32603);
    assert.match(answer.error.message, /federated server "huge" answered tools\/list with more than 1048576 bytes \(federation.maxListBytes\)/);
    assert.equal(answer.error.data.server, 'huge');
    assert.ok(seen.pulled < 2 * 1024 * 1024, `read ${seen.pulled} bytes`);
    const again = (await (await bounded('http://x/mcp', request('tools/list', 8))).json()) as { id: number; error: unknown };
    assert.equal(again.id, 8);
    assert.ok(again.error);
    assert.equal(seen.calls, 1, 'the refusal is remembered');
    assert.equal(told.length, 1);
    // Other lists, and everything that is not a list, are asked as usual.
    await bounded('http://x/mcp', request('prompts/list'));
    assert.equal(seen.calls, 2);
  });

  it('a declared content-length over the bound is refused before any byte is read; an answer within it passes whole', async () => {
    const big = upstream(5 * 1024 * 1024, { length: true });
    const bounded = boundedLists(big.fetch as never, 's', { maxBytes: () => 1024 * 1024, rememberMs: () => 0, refused: () => undefined });
    await bounded('http://x/mcp', request('resources/templates/list'));
    assert.equal(big.seen.pulled, 0);
    const small = upstream(300 * 1024);
    const ok = boundedLists(small.fetch as never, 's', { maxBytes: () => 1024 * 1024, rememberMs: () => 0, refused: () => undefined });
    assert.equal((await (await ok('http://x/mcp', request('tools/list'))).arrayBuffer()).byteLength, 300 * 1024);
    const call = upstream(5 * 1024 * 1024);
    const calls = boundedLists(call.fetch as never, 's', { maxBytes: () => 1024 * 1024, rememberMs: () => 0, refused: () => undefined });
    assert.equal((await (await calls('http://x/mcp', request('tools/call'))).arrayBuffer()).byteLength, 5 * 1024 * 1024, 'a tool call is not a list');
  });
});
