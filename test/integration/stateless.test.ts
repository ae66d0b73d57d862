// 2026-07-28 specifics: header-vs-body check (-32020), cancellation by disconnect, no retries.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { JSON_HEADERS, send, startFakeUpstream, startTestGateway, waitFor, type FakeUpstream, type TestGateway } from '../helpers.ts';

const V = '2026-07-28';
const meta = { 'io.modelcontextprotocol/protocolVersion': V };
const call = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: { region: 'us-west1' }, _meta: meta, ...extra } });
const modern = (h: Record<string, string>) => ({ ...JSON_HEADERS, 'mcp-protocol-version': V, ...h });

describe('stateless Streamable HTTP (2026-07-28)', () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":7,"result":{"content":[]}}'));
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('forwards matching Mcp-Method, Mcp-Name and every Mcp-Param-*', async () => {
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'get_weather', 'mcp-param-region': 'us-west1', 'mcp-param-x-unknown': 'y' }), body: call('get_weather') });
    assert.equal(r.status, 200);
    const h = fake.requests.at(-1)?.headers ?? {};
    assert.equal(h['mcp-method'], 'tools/call');
    assert.equal(h['mcp-name'], 'get_weather');
    assert.equal(h['mcp-param-region'], 'us-west1');
    assert.equal(h['mcp-param-x-unknown'], 'y');
    assert.equal(h['mcp-protocol-version'], V);
  });

  it('accepts a base64-sentinel Mcp-Name that decodes to the body value', async () => {
    const name = 'wetter_für_köln';
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from(name).toString('base64')}?=` }), body: call(name) });
    assert.equal(r.status, 200);
  });

  const mismatches: [string, Record<string, string>, string][] = [
    ['Mcp-Method differs', { 'mcp-method': 'tools/list', 'mcp-name': 'get_weather' }, call('get_weather')],
    ['Mcp-Method missing', { 'mcp-name': 'get_weather' }, call('get_weather')],
    ['Mcp-Name differs', { 'mcp-method': 'tools/call', 'mcp-name': 'other' }, call('get_weather')],
    ['Mcp-Name missing', { 'mcp-method': 'tools/call' }, call('get_weather')],
    ['base64 Mcp-Name differs', { 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('other').toString('base64')}?=` }, call('get_weather')],
    ['base64 Mcp-Name malformed', { 'mcp-method': 'tools/call', 'mcp-name': '=?base64?***?=' }, call('get_weather')],
    ['_meta protocol version differs', { 'mcp-method': 'tools/call', 'mcp-name': 'get_weather' }, call('get_weather', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2027-01-01' } })],
    ['resources/read uri differs', { 'mcp-method': 'resources/read', 'mcp-name': 'file:///a' }, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'resources/read', params: { uri: 'file:///b', _meta: meta } })],
  ];
  for (const [what, headers, body] of mismatches) {
    it(`answers 400 with JSON-RPC -32020 and no upstream call when ${what}`, async () => {
      const before = fake.requests.length;
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: modern(headers), body });
      assert.equal(r.status, 400);
      const err = JSON.parse(r.body.toString()) as { id: unknown; error: { code: number; message: string } };
      assert.equal(err.error.code, -32020);
      assert.equal(err.id, 7);
      assert.match(err.error.message, /Header mismatch/);
      assert.equal(fake.requests.length, before);
    });
  }

  it('does not check headers for sessionful versions (they carry none)', async () => {
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'bogus' }, body: call('x') });
    assert.equal(r.status, 200);
  });
});

describe('client disconnects and retries', () => {
  it('aborts the upstream request when the client closes its stream', async () => {
    let upstreamSawClose = false;
    const fake = await startFakeUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: started\n\n');
      res.on('close', () => (upstreamSawClose = true));
      void req;
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${gw.base}/mcp`, { method: 'POST', headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'x' }) }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
        req.end(call('x'));
        setTimeout(() => reject(new Error('no first event')), 3000);
      });
      await waitFor(() => upstreamSawClose, 3000, 'upstream close');
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'client-closed'), 3000, 'client-closed in access log');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('never retries a POST whose upstream connection dies, and answers 502', async () => {
    const fake = await startFakeUpstream((req) => {
      req.socket.destroy();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'x' }), body: call('x') });
      assert.equal(r.status, 502);
      const err = JSON.parse(r.body.toString()) as { error: { code: number } };
      assert.equal(err.error.code, -32603);
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(fake.requests.length, 1, 'exactly one upstream attempt');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
