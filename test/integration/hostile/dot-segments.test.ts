// Issue 15 item 1: dot segments in every spelling must never carry a request from one route to
// another route's upstream path (past that route's policy), whatever the upstream's URL parser.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accessLines, rawExchange, rpc, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway } from '../../helpers.ts';

/** One raw HTTP/1.1 request, the target sent byte for byte (no client normalises it). */
async function rawPost(port: number, target: string, body: string): Promise<{ status: number; text: string }> {
  const text = await rawExchange(port, `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
}

describe('dot segments and encoded separators (issue 15.1)', () => {
  let upstream: FakeUpstream;
  let sluice: TestGateway;
  const call = rpc('tools/call', { name: 'drop_database', arguments: {} });

  before(async () => {
    upstream = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [] } }));
    });
    sluice = await startTestGateway({
      routes: [
        { path: '/admin', upstream: `${upstream.url}/admin-mcp`, policy: { default: 'deny' } },
        { path: '/public', upstream: `${upstream.url}/public-mcp` },
      ],
    });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
  });

  // Each of these names /admin-mcp on an upstream that resolves dots (WHATWG URL) or decodes once.
  const crossing = [
    '/public/../admin-mcp',
    '/public/./../admin-mcp',
    '/public/%2e%2e/admin-mcp',
    '/public/%2E%2e/admin-mcp',
    '/public/.%2E/admin-mcp',
    '/public/%2e./admin-mcp',
    '/public/..%2fadmin-mcp',
    '/public/..%2Fadmin-mcp',
    '/public/%2e%2e%2fadmin-mcp',
    '/public/..%5cadmin-mcp',
    '/public\\..\\admin-mcp',
    '/public/%252e%252e/admin-mcp',
    '/public/%252E%252E%252Fadmin-mcp',
    '/public/x/../../admin-mcp',
    '/public/..',
    'http://127.0.0.1/public/../admin-mcp',
    '/admin/../public',
    // Path parameters: servers that strip `;…` (Tomcat, Spring, Jetty) read these as `..` (issue 31).
    '/public/..;/admin-mcp',
    '/public/%2e%2e;x=1/admin-mcp',
    '/public/..%3b/admin-mcp',
    '/public/.;x/..;/admin-mcp',
  ];

  it('refuses every spelling with 400 before any upstream request, and logs it as a security event', async () => {
    for (const target of crossing) {
      const before = upstream.requests.length;
      const r = await rawPost(sluice.port, target, call);
      assert.equal(r.status, 400, `${target} → ${r.status}`);
      assert.match(r.text, /-32600/, target);
      assert.equal(upstream.requests.length, before, `${target} reached the upstream`);
    }
    const refused = accessLines(sluice.logs).filter((l) => l['security'] === 'ambiguous-path');
    assert.equal(refused.length, crossing.length);
  });

  it('no upstream request, resolved as a WHATWG URL parser would, ever lands on the other route', () => {
    for (const r of upstream.requests) assert.ok(!new URL(r.url, 'http://u').pathname.startsWith('/admin-mcp'), r.url);
  });

  it('dots inside a route and escaped unreserved characters are normalised, not refused', async () => {
    const cases: [string, string][] = [
      ['/public/x/../', '/public-mcp/'],
      ['/public/./a/%7Euser/%41', '/public-mcp/a/~user/A'],
      ['/public/a/b/..?q=%2e%2e/x', '/public-mcp/a/?q=%2e%2e/x'],
      ['/public/%e2%82%ac', '/public-mcp/%E2%82%AC'],
    ];
    for (const [target, upstreamPath] of cases) {
      const r = await rawPost(sluice.port, target, call);
      assert.equal(r.status, 200, `${target}: ${r.text.slice(0, 200)}`);
      assert.equal(upstream.requests.at(-1)?.url, upstreamPath, target);
    }
  });

  it('the denied route stays denied under its own name', async () => {
    const r = await rawPost(sluice.port, '/admin', call);
    assert.equal(r.status, 200);
    assert.match(r.text, /-32003/);
  });
});

describe('CONNECT (issue 15.13)', () => {
  it('is answered 405 with Allow, not a silent close', async () => {
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200).end());
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const text = await rawExchange(gw.port, `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 405 /);
      assert.match(text, /allow: GET, POST, DELETE, OPTIONS, HEAD/i);
      assert.equal(up.requests.length, 0);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
