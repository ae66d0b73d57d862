import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseBoundary } from '../../src/transport/sse-boundary.ts';
import { SseEndpointRewriter } from '../../src/transport/sse-endpoint-rewriter.ts';

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
    return out + r.flush().toString('utf8');
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
