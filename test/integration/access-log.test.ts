// One JSON line per exchange with the documented fields, and never a secret.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { sealSession } from '../../src/session/token.ts';
import { accessLines, JSON_HEADERS, send, startFakeUpstream, startTestGateway, waitFor } from '../helpers.ts';

describe('access log', () => {
  it('logs method, route, status, JSON-RPC method and tool, latency, bytes, upstream, hashed session; no secrets', async () => {
    const secretSession = 'SESSION-abc123-SECRET';
    const fake = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': secretSession, 'set-cookie': 'sid=COOKIE-SECRET' }).end('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"RESULT-SECRET"}]}}'));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'lookup', arguments: { ssn: 'ARG-SECRET' } } });
      // The client holds Sluice's token for the upstream's session.
      const token = sealSession(gw.gw.ctx.sessions, { route: '/mcp', replica: `${fake.url}/mcp`, upstreamSession: secretSession, principal: undefined, issuedAt: 1_790_000_000 });
      const r = await send(`${gw.base}/mcp?token=QUERY-SECRET`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, AuThOrIzAtIoN: 'Bearer TOKEN-SECRET', cookie: 'c=COOKIE2-SECRET', 'mcp-session-id': token, 'Mcp-Param-Ssn': 'PARAM-SECRET', 'proxy-authorization': 'Basic PROXY-SECRET' },
        body,
      });
      assert.equal(fake.requests[0]?.headers['mcp-session-id'], secretSession, 'the upstream gets its own id back');
      assert.equal(r.headers['mcp-session-id'], token, 'the client keeps its token');
      await waitFor(() => accessLines(gw.logs).length === 1);
      const line = accessLines(gw.logs)[0] ?? {};
      assert.equal(line['method'], 'POST');
      assert.equal(line['route'], '/mcp');
      assert.equal(line['path'], '/mcp');
      assert.equal(line['status'], 200);
      assert.equal(line['rpcMethod'], 'tools/call');
      assert.equal(line['rpcName'], 'lookup');
      assert.equal(line['bytesIn'], Buffer.byteLength(body));
      assert.ok(Number(line['bytesOut']) > 0);
      assert.equal(typeof line['latencyMs'], 'number');
      assert.equal(line['upstream'], `${fake.url}/mcp`);
      assert.equal(line['session'], createHash('sha256').update(token).digest('hex').slice(0, 16));
      assert.ok(typeof line['time'] === 'string');
      const raw = gw.rawLog();
      for (const secret of ['TOKEN-SECRET', 'COOKIE-SECRET', 'COOKIE2-SECRET', secretSession, token, 'PARAM-SECRET', 'PROXY-SECRET', 'ARG-SECRET', 'RESULT-SECRET', 'QUERY-SECRET']) {
        assert.ok(!raw.includes(secret), `log leaks ${secret}`);
      }
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
