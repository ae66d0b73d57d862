// Issue 15 item 8: behind a chain of trusted proxies the client is the nearest hop that is not a
// proxy (X-Forwarded-For, or RFC 7239 Forwarded when that is all a proxy sends); it keys
// anonymous rate limits and is written in the access line. Addresses here are only header text.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accessLines, JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway, RPC_OK } from '../../helpers.ts';

describe('client address through several trusted hops (issue 15.8)', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    // 127.0.0.1 is the outer proxy; 192.0.2.0/24 stands for the load balancers behind it.
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, rateLimits: [{ by: 'principal', requests: 1, per: '1m' }] }], trustedProxies: ['127.0.0.1', '192.0.2.0/24'] });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });
  const from = async (headers: Record<string, string>, id: number) => {
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: rpc('tools/list', {}, id) });
    return { status: r.status, client: accessLines(gw.logs).at(-1)?.['client'] };
  };

  it('takes the rightmost untrusted X-Forwarded-For entry, ignoring what the client wrote left of it', async () => {
    assert.deepEqual(await from({ 'x-forwarded-for': '198.51.100.7, 192.0.2.10' }, 1), { status: 200, client: '198.51.100.7' });
    assert.deepEqual(await from({ 'x-forwarded-for': '198.51.100.8, 192.0.2.10' }, 2), { status: 200, client: '198.51.100.8' }, 'another client behind the same balancer has its own bucket');
    assert.deepEqual(await from({ 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 192.0.2.11, 192.0.2.10' }, 3), { status: 429, client: '198.51.100.7' }, 'a spoofed leftmost entry changes nothing');
  });

  it('reads Forwarded for= when a proxy sends only that (quoted, bracketed, with ports)', async () => {
    assert.deepEqual(await from({ forwarded: 'for=198.51.100.20;proto=https, for="192.0.2.12:443"' }, 4), { status: 200, client: '198.51.100.20' });
    assert.deepEqual(await from({ forwarded: 'for="[2001:db8::5]:8443", for=192.0.2.12' }, 5), { status: 200, client: '2001:db8::5' });
    assert.equal((await from({ forwarded: 'for=198.51.100.20' }, 6)).status, 429);
  });

  it('an untrusted peer is its own client address whatever it claims, and is logged', async () => {
    const direct = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      await send(`${direct.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-forwarded-for': '198.51.100.99' }, body: rpc('tools/list') });
      assert.equal(accessLines(direct.logs).at(-1)?.['client'], '127.0.0.1');
    } finally {
      await direct.close();
    }
  });
});
