// A 2026-07-28 subscriptions/listen POST is a long-lived stream like a GET: timeouts.request (the
// limit on a whole POST exchange) must not cut it (issue 18.3, first part).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { sleep, startFakeUpstream, startTestGateway } from '../helpers.ts';

const LISTEN = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscriptions/listen', params: {} });

describe('subscriptions/listen through Sluice', () => {
  it('survives timeouts.request of 2 s for 10 s, while an ordinary POST is still cut at 2 s', async () => {
    const up = await startFakeUpstream(async (_req, res, body) => {
      const method = (JSON.parse(body.toString()) as { method: string }).method;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: {} })}\n\n`);
      for (let i = 0; i < (method === 'subscriptions/listen' ? 12 : 6) && !res.destroyed; i++) {
        await sleep(1000);
        res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { i } })}\n\n`);
      }
      res.end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 } }], timeouts: { request: '2s', heartbeat: 0 } });
    const open = (method: string) =>
      new Promise<{ events: number; ms: number; clean: boolean }>((resolve) => {
        const t0 = performance.now();
        let events = 0;
        const req = httpRequest(`${gw.base}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': method },
        });
        req.on('response', (res) => {
          res.on('data', (d: Buffer) => (events += (d.toString().match(/data: /g) ?? []).length));
          res.on('end', () => resolve({ events, ms: performance.now() - t0, clean: true }));
          res.on('error', () => resolve({ events, ms: performance.now() - t0, clean: false }));
          res.on('aborted', () => resolve({ events, ms: performance.now() - t0, clean: false }));
        });
        req.end(method === 'subscriptions/listen' ? LISTEN : JSON.stringify({ jsonrpc: '2.0', id: 2, method, params: {} }));
      });
    try {
      const [listen, ordinary] = await Promise.all([open('subscriptions/listen'), open('tools/list')]);
      assert.ok(listen.ms >= 10_000, `the listen stream ran ${Math.round(listen.ms)} ms`);
      assert.equal(listen.events, 13, 'the acknowledgement and every notification');
      assert.ok(ordinary.ms < 4_000, `the ordinary POST was cut at ${Math.round(ordinary.ms)} ms`);
      assert.ok(ordinary.events < 7);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
