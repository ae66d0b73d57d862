// Upstream connections: kept alive and reused between exchanges, one per concurrent exchange,
// and never reused after an exchange was cut (its socket state is unknown).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, waitFor, RPC_OK } from '../helpers.ts';

describe('upstream connections', () => {
  it('reuses one keep-alive connection for sequential requests and one per concurrent request', async () => {
    const ports = new Set<number>();
    const fake = await startFakeUpstream(async (req, res) => {
      ports.add(req.socket.remotePort ?? 0);
      await new Promise((r) => setTimeout(r, req.url?.includes('slow') ? 100 : 0));
      res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') })).status, 200);
      assert.equal(ports.size, 1, 'twenty sequential requests share one upstream connection');
      ports.clear();
      const concurrent = await Promise.all(Array.from({ length: 8 }, () => send(`${gw.base}/mcp/slow`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') })));
      assert.ok(concurrent.every((r) => r.status === 200));
      assert.equal(ports.size, 8, 'eight concurrent requests use eight connections');
      const before = new Set(ports);
      for (let i = 0; i < 8; i++) await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.ok([...ports].every((p) => before.has(p)), 'later requests reuse the idle connections');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('closes the upstream connection of a cut stream and serves the next request on a fresh one', async () => {
    const closed: number[] = [];
    const portOf: Record<string, number> = {};
    const fake = await startFakeUpstream((req, res) => {
      const port = req.socket.remotePort ?? 0;
      portOf[req.method ?? ''] = port;
      req.socket.on('close', () => closed.push(port));
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const streamReq = httpRequest(`${gw.base}/mcp`, { headers: { accept: 'text/event-stream' } }, (res) => res.once('data', () => streamReq.destroy()));
      streamReq.on('error', () => undefined);
      streamReq.end();
      await waitFor(() => closed.length === 1, 2000, 'the upstream connection of the cut stream closed');
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(r.status, 200);
      assert.equal(closed[0], portOf['GET']);
      assert.notEqual(portOf['POST'], portOf['GET'], 'the cut connection was not reused');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
