// The payload tap's SSE reader: events as the SSE spec frames them, and a cap on what it holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CappedSseReader, type CappedEvent } from '../../../src/transport/sse-capped-reader.ts';

function read(chunks: string[], cap = 100): CappedEvent[] {
  const out: CappedEvent[] = [];
  const r = new CappedSseReader(cap, (e) => out.push(e));
  for (const c of chunks) r.feed(c);
  return out;
}

describe('CappedSseReader', () => {
  it('frames events on LF, CRLF and lone CR, across chunk splits', () => {
    assert.deepEqual(read(['event: a\ndata: 1\n\n', 'data: 2\r\n\r\n', 'data: 3\r\r', 'data: x\r', '\ndata: y\r', '\n\r\n']), [
      { event: 'a', data: '1', size: 1 },
      { event: 'message', data: '2', size: 1 },
      { event: 'message', data: '3', size: 1 },
      { event: 'message', data: 'x\ny', size: 3 },
    ]);
  });
  it('ignores comments and events with no data', () => {
    assert.deepEqual(read([': hi\n\nid: 1\n\ndata\n\n']), [{ event: 'message', data: '', size: 0 }]);
  });
  it('reports an event past the cap by size only and keeps no more than the cap of it', () => {
    const r = new CappedSseReader(10, (e) => out.push(e));
    const out: CappedEvent[] = [];
    r.feed('data: ');
    for (let i = 0; i < 1000; i++) r.feed('x'.repeat(1000));
    assert.ok((r as unknown as { line: string }).line.length <= 26, 'an endless data line is held only up to the cap');
    r.feed('\n\ndata: ok\n\n');
    assert.deepEqual(out, [
      { event: 'message', data: undefined, size: 1_000_000 },
      { event: 'message', data: 'ok', size: 2 },
    ]);
  });
});
