// Issue 15 items 9, 11, 13: requests whose answers cannot be delivered never run upstream;
// compressed streams Sluice must read are refused rather than corrupted; an upstream that breaks
// before its first body byte gets the client a 502, not a cut connection.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { accessLines, JSON_HEADERS, rawExchange, rpc, send, sleep, startFakeUpstream, startTestGateway, waitFor, RPC_OK } from '../../helpers.ts';

const post = (port: number, body: string, extra = '') =>
  `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('pipelining behind a closing answer (issue 15.9)', () => {
  it('a request pipelined behind one that closes the connection never reaches the upstream', async () => {
    const up = await startFakeUpstream(async (_req, res) => {
      await sleep(100);
      res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], limits: { body: '1KiB' } });
    try {
      const canary = rpc('tools/call', { name: 'canary_pipelined' }, 2);
      // 1: the client asks for the connection to close after the first answer: what follows is
      // ignored (never parsed into a request), and the first answer is delivered.
      const a = await rawExchange(gw.port, post(gw.port, rpc('tools/list'), 'Connection: close\r\n') + post(gw.port, canary));
      assert.match(a, /^HTTP\/1\.1 200 /);
      assert.equal((a.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer on the wire');
      // 2: the first request's own answer closes the connection (413 for a declared length past
      // the limit, its body sent anyway): Node discards that body and parses the next request.
      const b = await rawExchange(gw.port, post(gw.port, JSON.stringify({ pad: 'x'.repeat(2000) })) + post(gw.port, canary));
      assert.match(b, /^HTTP\/1\.1 413 /);
      assert.equal((b.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer on the wire');
      await waitFor(() => accessLines(gw.logs).some((l) => String(l['error']).includes('pipelined behind an answer that closes the connection')), 2000, 'the pipelined request refused');
      // 3: HTTP/2.0 in an HTTP/1 request line is refused before anything runs.
      const c = await rawExchange(gw.port, post(gw.port, canary).replace('HTTP/1.1', 'HTTP/2.0'));
      assert.match(c, /^HTTP\/1\.1 400 /);
      await sleep(300);
      assert.ok(!up.requests.some((r) => r.body.toString().includes('canary_pipelined')), JSON.stringify(up.requests.map((r) => r.body.toString())));
      const fine = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(fine.status, 200);
      assert.equal(up.requests.length, 2, 'only the closing request (answered) and the ordinary one ran');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('pipelining behind HTTP/1.0 and Connection: close (issue 31)', () => {
  it('what follows never runs upstream, and the first answer still reaches the client', async () => {
    // An unsized answer (an event stream): to an HTTP/1.0 client it ends the connection.
    const up = await startFakeUpstream(async (_req, res) => {
      await sleep(50);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    const call = (name: string) => rpc('tools/call', { name }, 2);
    const as10 = (text: string) => text.replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n');
    try {
      const sequences = [
        as10(post(gw.port, call('first'), 'Connection: keep-alive\r\n')) + post(gw.port, call('canary')),
        as10(post(gw.port, call('first'))) + as10(post(gw.port, call('canary'))) + post(gw.port, call('canary')),
        post(gw.port, call('first'), 'Connection: close\r\n') + post(gw.port, call('canary')) + post(gw.port, call('canary')),
      ];
      for (const [i, bytes] of sequences.entries()) {
        const wire = await rawExchange(gw.port, bytes);
        assert.match(wire, /^HTTP\/1\.1 200 /, `sequence ${i}: the first answer is delivered`);
        assert.equal((wire.match(/HTTP\/1\.1 /g) ?? []).length, 1, `sequence ${i}: one answer`);
      }
      await sleep(200);
      const ran = up.requests.map((r) => /"name":"([^"]+)"/.exec(r.body.toString())?.[1]);
      assert.deepEqual(ran, ['first', 'first', 'first'], 'no canary ran upstream');
      // A 1.0 keep-alive request answered with a size keeps its connection: the next one runs.
      const sized = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(sized.status, 200);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('compressed streams and early upstream breaks (issue 15.11, 15.13)', () => {
  it('a gzip-encoded SSE answer is refused with 502 and a log line, never corrupted by heartbeats', async () => {
    const up = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      res.end(gzipSync('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'));
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(r.status, 502);
      assert.equal(JSON.parse(r.body.toString()).error.data.sluice, 'SLUICE_ERR_UPSTREAM_PROTOCOL');
      assert.ok(gw.logs.some((l) => l['msg'] === 'upstream sent a content-encoded stream despite accept-encoding: identity' && l['encoding'] === 'gzip'));
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a gzip-encoded JSON answer nothing needs to read passes byte for byte', async () => {
    const zipped = gzipSync(RPC_OK);
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(zipped));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, zipped);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a malformed chunk before any body byte is answered 502, not a closed connection', async () => {
    const { createServer } = await import('node:net');
    const raw = createServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\n'));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as { port: number }).port;
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${port}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(r.status, 502);
      await waitFor(() => accessLines(gw.logs).length > 0, 1000, 'access line');
    } finally {
      await gw.close();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });
});
