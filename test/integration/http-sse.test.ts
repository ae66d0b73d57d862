// HTTP+SSE (2024-11-05) through a route whose public prefix differs from the upstream's path:
// the `endpoint` event must be rewritten to the public path, query untouched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { startDemoUpstream, startFakeUpstream, startTestGateway, type TestGateway } from '../helpers.ts';

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
      assert.equal(
        text,
        `: hello\r\n\r\nevent: endpoint\r\ndata: /pub/messages${query}\r\n\r\nevent: endpoint\ndata: /messages?second\n\nid: 7\ndata: {"a":1}\n\n`,
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
      assert.equal(text, 'event: endpoint\ndata: /p/messages?sessionId=1\n\n');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
