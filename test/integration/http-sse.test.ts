// HTTP+SSE (2024-11-05) through a route whose public prefix differs from the upstream's path:
// the `endpoint` event must be rewritten to the public path, its sessionId sealed like an
// Mcp-Session-Id, every other query byte untouched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { JSON_HEADERS, rpc, send, startDemoUpstream, startFakeUpstream, startTestGateway, upstreamSessionOf, type TestGateway } from '../helpers.ts';

/** The endpoint event's sessionId value. */
const sessionParam = (text: string): string => /[?&]sessionId=([^&\r\n]*)/.exec(text)?.[1] ?? '';

describe('HTTP+SSE through a different public prefix', () => {
  let upstream: UpstreamKit;
  let sluice: TestGateway;
  before(async () => {
    upstream = await startDemoUpstream();
    sluice = await startTestGateway({ routes: [{ path: '/tenants/a', upstream: `http://127.0.0.1:${upstream.port}/` }] });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
  });

  it('the SDK SSE client connects, posts to the rewritten endpoint and calls a tool', async () => {
    const client = new Client({ name: 'sse', version: '1' });
    const transport = new SSEClientTransport(new URL(`${sluice.base}/tenants/a/sse`));
    await client.connect(transport);
    const res = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.deepEqual(res.content, [{ type: 'text', text: '5' }]);
    await client.close();
  });

  it('rewrites only the first endpoint event, keeping its query verbatim and every other byte', async () => {
    const query = '?sessionId=a%2Fb+c&x=%E2%9C%93';
    const fake = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hello\r\n\r\n');
      res.write(`event: endpoint\r\ndata: /messages${query}\r\n\r\n`);
      res.end('event: endpoint\ndata: /messages?second\n\nid: 7\ndata: {"a":1}\n\n');
    });
    const gw = await startTestGateway({ routes: [{ path: '/pub', upstream: `${fake.url}/` }] });
    try {
      const r = await fetch(`${gw.base}/pub/sse`, { headers: { accept: 'text/event-stream' } });
      const text = await r.text();
      const token = sessionParam(text);
      assert.match(token, /^[A-Za-z0-9_-]{40,}$/);
      assert.equal(upstreamSessionOf(gw, token), 'a%2Fb+c', 'the upstream id is sealed byte for byte');
      assert.equal(
        text,
        `: hello\r\n\r\nevent: endpoint\r\ndata: /pub/messages?sessionId=${token}&x=%E2%9C%93\r\n\r\nevent: endpoint\ndata: /messages?second\n\nid: 7\ndata: {"a":1}\n\n`,
      );
      assert.equal(fake.requests[0]?.url, '/sse');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('rewrites an absolute upstream URL to a same-origin public path', async () => {
    const fake = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: endpoint\ndata: http://127.0.0.1:${(_req.socket.localPort)}/base/messages?sessionId=1\n\n`);
    });
    const gw = await startTestGateway({ routes: [{ path: '/p', upstream: `${fake.url}/base` }] });
    try {
      const text = await (await fetch(`${gw.base}/p/sse`)).text();
      const token = sessionParam(text);
      assert.equal(upstreamSessionOf(gw, token), '1');
      assert.equal(text, `event: endpoint\ndata: /p/messages?sessionId=${token}\n\n`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('routes the POST by its sealed sessionId and restores the upstream\'s; a forged one is 404 with no upstream call', async () => {
    const fake = await startFakeUpstream((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /messages?sessionId=up-123&v=2\n\n');
        return;
      }
      res.writeHead(202).end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/legacy', upstream: `${fake.url}/` }] });
    const ac = new AbortController();
    try {
      const r = await fetch(`${gw.base}/legacy/sse`, { signal: ac.signal });
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const endpoint = /data: (\S+)/.exec(first)?.[1] ?? '';
      assert.doesNotMatch(endpoint, /up-123/);
      const ok = await send(`${gw.base}${endpoint}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(ok.status, 202);
      assert.equal(fake.requests.at(-1)?.url, '/messages?sessionId=up-123&v=2');
      const forged = await send(`${gw.base}/legacy/messages?sessionId=up-123&v=2`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(forged.status, 404);
      assert.equal(fake.requests.length, 2, 'the forged POST never reached the upstream');
      const line = gw.logs.find((l) => l['msg'] === 'access' && l['status'] === 202);
      assert.equal(line?.['path'], '/legacy/messages', 'no session value in the access log');
    } finally {
      ac.abort();
      await gw.close();
      await fake.close();
    }
  });
});
