// Sluice's own answers in the client's language (issue 18.6): an unknown session is a JSON-RPC
// error on every method, and an upstream failure names its reason in plain words (the low-level
// code kept in parentheses), in the answer and in the access log; a client that read its answer
// and left is not logged as one that gave up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request as httpRequest } from 'node:http';
import { accessLines, JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, waitFor } from '../helpers.ts';

describe('errors in the client language', () => {
  it('an unknown session gets the same JSON-RPC 404 on GET and DELETE as on POST', async () => {
    const up = await startFakeUpstream((_req, res) => void res.writeHead(500).end());
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 } }] });
    try {
      const headers = { ...JSON_HEADERS, 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': 'not-a-token-of-this-gateway' };
      for (const method of ['POST', 'GET', 'DELETE']) {
        const r = await send(`${gw.base}/mcp`, { method, headers, ...(method === 'POST' ? { body: rpc('tools/list', {}, 7) } : {}) });
        assert.equal(r.status, 404, method);
        const body = JSON.parse(r.body.toString()) as { jsonrpc?: string; id?: unknown; error?: { code?: number; data?: { sluice?: string } } };
        assert.equal(body.jsonrpc, '2.0', method);
        assert.equal(body.id, method === 'POST' ? 7 : null, method);
        assert.equal(body.error?.data?.sluice, 'SLUICE_ERR_SESSION_NOT_FOUND', method);
        assert.equal(typeof body.error?.code, 'number', method);
      }
      assert.equal(up.requests.length, 0, 'no upstream request');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('an upstream that drops the connection: 502 naming the reason in plain words, in the answer and the access log', async () => {
    const up = await startFakeUpstream((req) => void req.socket.destroy());
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 } }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(r.status, 502);
      const message = (JSON.parse(r.body.toString()) as { error: { message: string } }).error.message;
      assert.match(message, /the upstream (closed|reset) the connection \((UND_ERR_SOCKET|ECONNRESET)\)/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const line = accessLines(gw.logs).at(-1)!;
      assert.match(String(line['error']), /the upstream (closed|reset) the connection \(/);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a client that leaves an SSE answer once it has the response is logged ok; one that leaves before it, client-closed', async () => {
    // The upstream answers on a stream it keeps open after the response (as servers may).
    const up = await startFakeUpstream(async (_req, res, body) => {
      const id = (JSON.parse(body.toString()) as { id: number }).id;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`);
      if (id === 1) res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } })}\n\n`);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      res.end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 } }] });
    const leaveAfter = (id: number, marker: string) =>
      new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
            if (text.includes(marker)) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', () => {});
        req.end(rpc('tools/call', { name: 'x' }, id));
        setTimeout(() => reject(new Error('marker never came')), 2000);
      });
    try {
      await leaveAfter(1, '"result"');
      await leaveAfter(2, 'notifications/progress');
      await waitFor(() => accessLines(gw.logs).length === 2, 3000, 'two access lines');
      const outcomes = accessLines(gw.logs).map((l) => l['outcome']);
      assert.deepEqual(outcomes.sort(), ['client-closed', 'ok']);
      assert.equal(accessLines(gw.logs).find((l) => l['outcome'] === 'ok')?.['status'], 200);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
