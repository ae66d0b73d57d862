// Which headers cross Sluice, each way, and the request-head rules.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sealSession } from '../../src/session/token.ts';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, upstreamSessionOf, type FakeUpstream, type TestGateway, RPC_OK } from '../helpers.ts';

function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

describe('header forwarding', () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeUpstream((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'mcp-session-id': 'upstream-session',
        'mcp-protocol-version': '2025-11-25',
        connection: 'x-upstream-private',
        'x-upstream-private': 'secret',
        'keep-alive': 'timeout=5',
        'proxy-authenticate': 'Basic',
        trailer: 'x-t',
        upgrade: 'h2c',
        'www-authenticate': 'Bearer resource_metadata="http://example.test/.well-known/oauth-protected-resource"',
      });
      res.end(RPC_OK);
    });
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], trustedProxies: ['10.9.8.7'] });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('forwards every MCP header and strips hop-by-hop ones both ways', async () => {
    const token = sealSession(gw.gw.ctx.sessions, { route: '/mcp', replica: `${fake.url}/mcp`, upstreamSession: 'sess-1', principal: undefined, issuedAt: 1_790_000_000 });
    const res = await send(`${gw.base}/mcp`, {
      method: 'POST',
      headers: {
        ...JSON_HEADERS,
        authorization: 'Bearer tok',
        'mcp-session-id': token,
        'mcp-protocol-version': '2025-11-25',
        'last-event-id': 'ev-9',
        origin: 'http://localhost:1234',
        'mcp-param-region': 'us-west1',
        'mcp-param-unknown-thing': '=?base64?SGVsbG8sIOS4lueVjA==?=',
        connection: 'keep-alive, x-hop-private',
        'x-hop-private': 'must not pass',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic abc',
        'proxy-connection': 'keep-alive',
        'x-custom-end-to-end': 'kept',
      },
      body: rpc('tools/list'),
    });
    assert.equal(res.status, 200);
    const h = fake.requests.at(-1)?.headers ?? {};
    assert.equal(h['authorization'], 'Bearer tok');
    assert.equal(h['accept'], 'application/json, text/event-stream');
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h['mcp-session-id'], 'sess-1', "the client's token is opened to the upstream's own id");
    assert.equal(h['mcp-protocol-version'], '2025-11-25');
    assert.equal(h['last-event-id'], 'ev-9');
    assert.equal(h['origin'], 'http://localhost:1234');
    assert.equal(h['mcp-param-region'], 'us-west1');
    assert.equal(h['mcp-param-unknown-thing'], '=?base64?SGVsbG8sIOS4lueVjA==?=');
    assert.equal(h['x-custom-end-to-end'], 'kept');
    for (const name of ['x-hop-private', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) assert.equal(h[name], undefined, name);
    assert.equal(h['host'], `127.0.0.1:${fake.port}`, "upstream's own Host by default");
    // response side
    assert.notEqual(res.headers['mcp-session-id'], 'upstream-session', 'upstream session ids never reach the client');
    assert.equal(upstreamSessionOf(gw, String(res.headers['mcp-session-id'])), 'upstream-session');
    assert.equal(res.headers['mcp-protocol-version'], '2025-11-25');
    assert.match(String(res.headers['www-authenticate']), /resource_metadata/);
    for (const name of ['x-upstream-private', 'proxy-authenticate', 'trailer', 'upgrade']) assert.equal(res.headers[name], undefined, name);
  });

  it('sets X-Forwarded-* and Forwarded, ignoring what an untrusted peer claims', async () => {
    await send(`${gw.base}/mcp`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6' },
      body: rpc('ping'),
    });
    const h = fake.requests.at(-1)?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`);
    assert.equal(h['forwarded'], `for=127.0.0.1;proto=http;host="127.0.0.1:${gw.port}"`);
  });

  it('trusts incoming forwarding headers from a configured proxy', async () => {
    const trusting = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], trustedProxies: ['127.0.0.0/8'] });
    try {
      await send(`${trusting.base}/mcp`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'mcp.example.com', 'x-forwarded-proto': 'https' },
        body: rpc('ping'),
      });
      const h = fake.requests.at(-1)?.headers ?? {};
      assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'mcp.example.com');
    } finally {
      await trusting.close();
    }
  });

  for (const name of ['Host', 'Content-Length', 'Mcp-Session-Id', 'Authorization']) {
    it(`answers 400 to a duplicate ${name} without calling the upstream`, async () => {
      const before = fake.requests.length;
      const body = rpc('ping');
      const dupValue = name === 'Content-Length' ? String(body.length) : name === 'Host' ? `127.0.0.1:${gw.port}` : 'a';
      const head = [
        'POST /mcp HTTP/1.1',
        `Host: 127.0.0.1:${gw.port}`,
        'Content-Type: application/json',
        `Content-Length: ${body.length}`,
        ...(name === 'Host' || name === 'Content-Length' ? [] : [`${name}: first`]),
        `${name}: ${dupValue}`,
        'Connection: close',
      ];
      const out = await rawExchange(gw.port, `${head.join('\r\n')}\r\n\r\n${body}`);
      assert.match(out, /^HTTP\/1\.1 400 /);
      assert.equal(fake.requests.length, before);
    });
  }

  it('never lets an absolute-form request target change the upstream', async () => {
    const out = await rawExchange(gw.port, `GET http://evil.example:9/mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.equal(fake.requests.at(-1)?.url, '/mcp?x=1');
    const out2 = await rawExchange(gw.port, `GET //evil.example/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.match(out2, /^HTTP\/1\.1 404 /);
  });

  it('can preserve the client Host when a route asks for it', async () => {
    const keep = await startTestGateway({ listen: [{ host: '127.0.0.1', port: 0, allowHosts: ['mcp.example.com'] }], routes: [{ path: '/mcp', upstream: `${fake.url}/mcp`, preserveHost: true }] });
    try {
      await send(`${keep.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, host: 'mcp.example.com' }, body: rpc('ping') });
      assert.equal(fake.requests.at(-1)?.headers['host'], 'mcp.example.com');
    } finally {
      await keep.close();
    }
  });
});

describe('status codes and bodies pass untouched', () => {
  const statuses = [200, 202, 400, 401, 403, 404, 405, 406, 409, 413, 415, 429, 500, 503];
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeUpstream((req, res) => {
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('s'));
      const headers: Record<string, string> = { 'content-type': status === 405 ? 'text/plain' : 'application/json', 'x-s': String(status) };
      if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token"';
      if (status === 405) headers['allow'] = 'POST';
      if (status === 202) return void res.writeHead(202).end();
      res.writeHead(status, headers).end(status === 405 ? 'Method Not Allowed' : JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000 - (status % 100), message: `upstream ${status}` } }));
    });
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });
  for (const s of statuses) {
    it(`passes ${s}`, async () => {
      const direct = await send(`${fake.url}/mcp?s=${s}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      const via = await send(`${gw.base}/mcp?s=${s}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(via.status, direct.status);
      assert.equal(via.body.toString(), direct.body.toString());
      assert.equal(via.headers['content-type'], direct.headers['content-type']);
      assert.equal(via.headers['www-authenticate'], direct.headers['www-authenticate']);
      assert.equal(via.headers['allow'], direct.headers['allow']);
    });
  }
  it('passes 3xx as is, never following a redirect', async () => {
    const redirecting = await startFakeUpstream((_req, res) => res.writeHead(307, { location: 'http://127.0.0.1:1/elsewhere' }).end());
    const g = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${redirecting.url}/mcp` }] });
    try {
      const r = await send(`${g.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(r.status, 307);
      assert.equal(r.headers['location'], 'http://127.0.0.1:1/elsewhere');
      assert.equal(redirecting.requests.length, 1);
    } finally {
      await g.close();
      await redirecting.close();
    }
  });
});
