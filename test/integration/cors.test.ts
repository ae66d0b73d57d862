// CORS through Sluice (routes[].cors): allowed preflights answered here with the MCP headers,
// other origins refused, answers (forwarded or Sluice's own errors) carry one set of
// Access-Control-* headers exposing Mcp-Session-Id; with CORS off everything passes through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway } from '../helpers.ts';

const APP = 'https://app.example';

async function upstreamWithOwnCors() {
  return startFakeUpstream((req, res) => {
    if (req.method === 'OPTIONS') return void res.writeHead(200, { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'x-upstream' }).end();
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'up-1', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'x-upstream', vary: 'Accept-Encoding' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
  });
}

describe('CORS in Sluice', () => {
  it('answers allowed preflights itself and refuses other origins; the upstream never sees them', async () => {
    const up = await upstreamWithOwnCors();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, cors: { allowOrigins: [APP] } }] });
    try {
      const pre = await send(`${gw.base}/mcp`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id, mcp-param-region' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers['access-control-allow-origin'], APP);
      assert.match(String(pre.headers['access-control-allow-headers']), /Mcp-Session-Id.*MCP-Protocol-Version.*Last-Event-ID.*mcp-param-region/);
      assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS');
      const refused = await send(`${gw.base}/mcp`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      assert.equal(refused.status, 403);
      assert.equal(refused.headers['access-control-allow-origin'], undefined);
      assert.match(refused.body.toString(), /SLUICE_ERR_ORIGIN_NOT_ALLOWED/);
      assert.equal(up.requests.length, 0, 'preflights are answered by Sluice');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it("puts its own Access-Control-* headers on forwarded answers and on its errors, replacing the upstream's", async () => {
    const up = await upstreamWithOwnCors();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, cors: { allowOrigins: [APP] } }] });
    try {
      const init = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, origin: APP }, body: rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } }) });
      assert.equal(init.status, 200);
      assert.equal(init.headers['access-control-allow-origin'], APP);
      assert.match(String(init.headers['access-control-expose-headers']), /^Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Last-Event-ID$/);
      assert.equal(init.headers['vary'], 'Accept-Encoding, Origin');
      const lost = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, origin: APP, 'mcp-session-id': 'forged' }, body: rpc('tools/list') });
      assert.equal(lost.status, 404);
      assert.equal(lost.headers['access-control-allow-origin'], APP, 'a browser client can read the 404 and start over');
      assert.match(String(lost.headers['access-control-expose-headers']), /Mcp-Session-Id/);
      const other = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, origin: 'https://evil.example' }, body: rpc('ping') });
      assert.equal(other.headers['access-control-allow-origin'], undefined, 'no CORS headers for an origin not allowed (nor the upstream\'s "*")');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('with CORS off (the default) passes OPTIONS from an origin the listener allows, and the upstream\'s own headers, through', async () => {
    const up = await upstreamWithOwnCors();
    const gw = await startTestGateway({ listen: [{ host: '127.0.0.1', port: 0, allowOrigins: [APP] }], routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const pre = await send(`${gw.base}/mcp`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers['access-control-allow-headers'], 'x-upstream');
      assert.equal(up.requests[0]?.method, 'OPTIONS');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('refuses a config with a bad origin, naming the field', async () => {
    await assert.rejects(startTestGateway({ routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', cors: { allowOrigins: ['https://app.example/path'] } }] }), /routes\[0\]\.cors\.allowOrigins\[0\]: must be "\*" or an origin/);
  });
});
