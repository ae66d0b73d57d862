// Issue 15 item 2: one client must not be able to eject a route's only replica, and a short
// upstream restart must not cost every session (no 404 while the owner is merely away).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream } from '../../helpers.ts';

/** An upstream that keeps its sessions across restarts (as one with an external session store does) and fails `boom` calls. */
function sessionKeepingUpstream(port = 0): Promise<FakeUpstream> {
  return startFakeUpstream((_req, res, body) => {
    const msg = JSON.parse(body.toString() || '{}') as { id?: number; method?: string; params?: { name?: string } };
    if (msg.params?.name === 'boom') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('tool crashed');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (msg.method === 'initialize') headers['mcp-session-id'] = 'upstream-session-1';
    res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'keeper', version: '1' } } }));
  }, port);
}

const SESSIONFUL = { ...JSON_HEADERS, 'mcp-protocol-version': '2025-11-25' };

describe('the only replica (issue 15.2)', () => {
  it('500 answers to one client never eject it: everyone else and every session carries on', async () => {
    const up = await sessionKeepingUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 } }] });
    try {
      const init = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } }) });
      const token = init.headers['mcp-session-id'] as string;
      assert.ok(token);
      for (let i = 0; i < 12; i++) {
        const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...SESSIONFUL, 'mcp-session-id': token }, body: rpc('tools/call', { name: 'boom' }, i) });
        assert.equal(r.status, 500, 'the upstream\'s own answer is passed on');
      }
      const other = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...SESSIONFUL, 'mcp-session-id': token }, body: rpc('tools/list') });
      assert.equal(other.status, 200, 'the session still works');
      const fresh = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
      assert.equal(fresh.status, 200, 'new sessions still open');
      assert.ok(!gw.logs.some((l) => l['msg'] === 'replica ejected after consecutive failures'));
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a short restart: its sessions get 503 with Retry-After while it is away (never 404) and work again the moment it is back', async () => {
    let up = await sessionKeepingUpstream();
    const port = up.port;
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, healthCheck: { interval: 0 }, ejection: { consecutiveFailures: 2, duration: '30s' } }] });
    try {
      const init = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
      const token = init.headers['mcp-session-id'] as string;
      await up.close();
      for (let i = 0; i < 6; i++) {
        const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...SESSIONFUL, 'mcp-session-id': token }, body: rpc('tools/list', {}, i) });
        assert.equal(r.status, 503, `request ${i} while the upstream is down`);
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(JSON.parse(r.body.toString()).error.data.sluice, 'SLUICE_ERR_NO_HEALTHY_UPSTREAM');
      }
      const newcomer = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
      assert.equal(newcomer.status, 502, 'a new session meanwhile: the connect error');
      up = await sessionKeepingUpstream(port);
      const t0 = performance.now();
      const back = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...SESSIONFUL, 'mcp-session-id': token }, body: rpc('tools/list') });
      assert.equal(back.status, 200, 'the session survived the restart');
      assert.ok(performance.now() - t0 < 2000);
      const fresh = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
      assert.equal(fresh.status, 200, 'no ejection outlasts the recovery');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
