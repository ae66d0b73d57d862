import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransformChain, type BodyTransform } from '../../../src/transport/body-transform.ts';
import { SseBoundary, SseFramer } from '../../../src/transport/sse-framing.ts';
import { SseEndpointRewriter } from '../../../src/transport/sse-endpoint-rewriter.ts';

describe('SseBoundary', () => {
  const at = (...chunks: string[]) => {
    const b = new SseBoundary();
    for (const c of chunks) b.observe(Buffer.from(c));
    return b.atBoundary();
  };
  it('knows when a stream sits between events', () => {
    assert.equal(at(), true);
    assert.equal(at('data: x\n\n'), true);
    assert.equal(at('data: x\r\n\r\n'), true);
    assert.equal(at('data: x\n', '\n'), true);
    assert.equal(at('data: x\r\n', '\r\n'), true);
    assert.equal(at('data: x\n'), false);
    assert.equal(at('data: x'), false);
    assert.equal(at('data: x\r\r'), true, 'CR-only framing ends an event (a following LF is one more empty line)');
    assert.equal(at('data: x\r'), false, 'one CR only ends the line');
    assert.equal(at('data: x\r\n\r'), true);
    assert.equal(at('data: x\r\r', 'data'), false);
    assert.equal(at('data: x\n\n', 'id: 1\n'), false);
  });
});

describe('SseEndpointRewriter', () => {
  const run = (chunks: string[], rewrite = (d: string) => `/pub${d}`) => {
    const r = new SseEndpointRewriter(rewrite);
    const out = chunks.map((c) => r.push(Buffer.from(c, 'utf8')).toString('utf8')).join('');
    return out + r.end().toString('utf8');
  };
  it('rewrites the endpoint data split over chunks', () => {
    assert.equal(run(['event: endp', 'oint\ndata: /messages?s', 'essionId=1\n', '\ndata: after\n\n']), 'event: endpoint\ndata: /pub/messages?sessionId=1\n\ndata: after\n\n');
  });
  it('leaves a stream whose first event is not endpoint alone', () => {
    assert.equal(run(['data: hello\n\nevent: endpoint\ndata: /x\n\n']), 'data: hello\n\nevent: endpoint\ndata: /x\n\n');
  });
  it('keeps non-ASCII data intact', () => {
    assert.equal(run(['event: endpoint\ndata: /m?q=✓\n\n']), 'event: endpoint\ndata: /pub/m?q=✓\n\n');
  });
  it('releases a CR-only endpoint event at once, without waiting for the next byte', () => {
    const r = new SseEndpointRewriter((d) => `/pub${d}`);
    assert.equal(r.push(Buffer.from('event: endpoint\rdata: /messages?sessionId=1\r\r')).toString(), 'event: endpoint\rdata: /pub/messages?sessionId=1\r\r');
    assert.equal(r.push(Buffer.from('\ndata: next\r\r')).toString(), '\ndata: next\r\r');
  });
  it('passes an unfinished stream through at the end', () => {
    assert.equal(run(['event: endpoint\ndata: /m']), 'event: endpoint\ndata: /m');
  });
});

describe('SseFramer (the one framer of the SSE rewriters)', () => {
  const frame = (...chunks: string[]) => {
    const f = new SseFramer();
    const blocks = chunks.flatMap((c) => f.push(Buffer.from(c, 'latin1')));
    return { blocks, rest: f.release() };
  };
  it('cuts at every blank-line spelling and gives every byte back as it came', () => {
    const stream = 'data: a\n\ndata: b\r\n\r\ndata: c\r\rid: 4\r\n\ndata: d\n\r\n: comment\n\ndata: e';
    const whole = frame(stream);
    assert.deepEqual(whole.blocks, ['data: a\n\n', 'data: b\r\n\r\n', 'data: c\r\r', 'id: 4\r\n\n', 'data: d\n\r\n', ': comment\n\n']);
    assert.equal(whole.rest, 'data: e');
    for (let cut = 1; cut < stream.length; cut++) {
      const split = frame(stream.slice(0, cut), stream.slice(cut));
      assert.equal(split.blocks.join('') + split.rest, stream, `cut at ${cut}`);
      // A cut inside a CRLF blank line ends the event at its CR; the LF comes as an empty block.
      assert.equal(split.blocks.filter((b) => /[^\r\n]/.test(b)).length, 6, `cut at ${cut}`);
    }
  });
  it('waits for the byte after a CR that ends a text line (it may be a CRLF), not after a blank CR line', () => {
    const f = new SseFramer();
    assert.deepEqual(f.push(Buffer.from('data: x\r')), []);
    assert.deepEqual(f.push(Buffer.from('\n\r\n')), ['data: x\r\n\r\n']);
    assert.deepEqual(f.push(Buffer.from('data: y\r\r')), ['data: y\r\r']);
    assert.equal(f.holding, 0);
  });
  it('holds an unfinished event and says how much', () => {
    const f = new SseFramer();
    f.push(Buffer.from('data: ' + 'x'.repeat(100)));
    assert.equal(f.holding, 106);
  });
});

describe('TransformChain', () => {
  const upper: BodyTransform = { push: (c) => Buffer.from(c.toString().toUpperCase()), end: () => Buffer.from('!') };
  const holdAll = (): BodyTransform => {
    const held: Buffer[] = [];
    return { push: (c) => (held.push(c), Buffer.alloc(0)), end: () => Buffer.concat(held) };
  };
  it('feeds each output to the next and flushes in order at the end', () => {
    const chain = new TransformChain([holdAll(), upper]);
    assert.equal(chain.push(Buffer.from('ab')).length, 0);
    assert.equal(chain.push(Buffer.from('c')).length, 0);
    assert.equal(chain.end().toString(), 'ABC!');
    const other = new TransformChain([upper, holdAll()]);
    assert.equal(other.push(Buffer.from('x')).length, 0);
    assert.equal(other.end().toString(), 'X!');
  });
});
