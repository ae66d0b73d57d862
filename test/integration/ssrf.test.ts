// The SSRF guard at connect time, with loopback sentinels counting every connection: the case
// table through the real upstream client (DNS injected; "public" addresses are dialled only
// through an injected connector that connects to a sentinel instead), literal loopback IPs
// through the real connector, DNS rebinding, redirects, proxy variables, health checks, and the
// gateway's answer and security log.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildConnector } from 'undici';
import { STRICT, TRUSTED } from '../../src/security/address-policy.ts';
import type { Connector } from '../../src/transport/guarded-connect.ts';
import { UpstreamClient } from '../../src/transport/upstream-client.ts';
import { policyOf, SSRF_CASES, URL_RULES } from '../fixtures/ssrf-cases.ts';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, waitFor, RPC_OK } from '../helpers.ts';

interface Sentinel {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A loopback listener that counts connections and answers any request with 204. */
async function sentinel(): Promise<Sentinel> {
  const s: Sentinel = { port: 0, connections: 0, close: async () => undefined };
  const server: Server = createServer((sock) => {
    s.connections++;
    sock.on('data', () => sock.write('HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n', () => sock.end()));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as { port: number }).port;
  s.close = () => new Promise<void>((r) => server.close(() => r()));
  return s;
}

const realConnector = buildConnector({ timeout: 2000 });

/** Dials the sentinel whatever address it is given, and records that address. */
function redirectingConnector(target: Sentinel, dialled: string[]): Connector {
  return (opts, cb) => {
    dialled.push(opts.hostname);
    realConnector({ ...opts, hostname: '127.0.0.1', port: String(target.port), protocol: 'http:', servername: undefined }, cb);
  };
}

/** One GET through the upstream client; resolves to the status or the catalogue error code. */
function get(client: UpstreamClient, origin: string, policy: typeof STRICT): Promise<{ status?: number; code?: string; message?: string }> {
  return new Promise((resolve) => {
    client.dispatch(
      { origin, policy, tls: undefined, path: '/', method: 'GET', headers: [], body: undefined },
      {
        onHeaders: (status) => resolve({ status }),
        onData: () => undefined,
        onEnd: () => undefined,
        onError: (err) => resolve({ code: (err as { code?: string }).code, message: (err as Error).message }),
      },
    );
  });
}

describe('SSRF guard at connect time', () => {
  let s: Sentinel;
  before(async () => {
    s = await sentinel();
  });
  after(() => s.close());

  describe('the case table through the upstream client', () => {
    for (const c of SSRF_CASES) {
      if (URL_RULES.has(c.expect as never) || !c.url.startsWith('http://') || c.url.includes('@')) continue;
      it(`${c.url} ${c.policy ?? 'strict'}: ${c.expect}`, async () => {
        const dialled: string[] = [];
        let lookups = 0;
        const client = new UpstreamClient({
          connectTimeoutMs: 2000,
          headersTimeoutMs: 2000,
          resolver: async () => {
            lookups++;
            if (c.answers === 'throw') throw new Error('SERVFAIL');
            return c.answers ?? [];
          },
          connector: redirectingConnector(s, dialled),
        });
        const before = s.connections;
        const origin = new URL(c.url.replaceAll('PORT', String(s.port))).origin;
        const r = await get(client, origin, policyOf(c));
        await client.close();
        if (c.expect === 'allowed') {
          assert.equal(r.status, 204, JSON.stringify(r));
          assert.equal(s.connections - before, 1);
          // The socket went to the address that was judged: the first answer, or the literal.
          const host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
          assert.equal(dialled[0], c.answers && c.answers !== 'throw' && c.answers.length ? c.answers[0] : host);
        } else {
          assert.equal(r.code, 'SLUICE_ERR_UPSTREAM_REFUSED', JSON.stringify(r));
          assert.equal(s.connections - before, 0, 'no connection for a refused address');
          assert.deepEqual(dialled, []);
          if (/^http:\/\/[\d.[]/.test(origin) || /^http:\/\/0x/i.test(origin)) assert.equal(lookups, 0, 'a literal IP never reaches DNS');
          assert.doesNotMatch(r.message ?? '', /\d+\.\d+\.\d+\.\d+|::/, 'the error never names the address');
        }
      });
    }
  });

  it('refuses literal loopback spellings with the real connector and no DNS hook: 0 sentinel connections; trusted reaches it', async () => {
    let lookups = 0;
    const client = new UpstreamClient({ connectTimeoutMs: 2000, headersTimeoutMs: 2000, resolver: async () => (lookups++, []) });
    const before = s.connections;
    for (const spelling of ['127.0.0.1', '127.1', '2130706433', '0x7f.1', '0177.0.0.1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      const origin = new URL(`http://${spelling}:${s.port}/`).origin;
      assert.equal((await get(client, origin, STRICT)).code, 'SLUICE_ERR_UPSTREAM_REFUSED', spelling);
    }
    assert.equal(s.connections - before, 0);
    assert.equal(lookups, 0);
    assert.equal((await get(client, `http://127.0.0.1:${s.port}`, TRUSTED)).status, 204, 'the sentinel was reachable all along');
    assert.equal(s.connections - before, 1);
    await client.close();
  });

  it('judges every connect: a name that rebinds to loopback after a public answer is refused on the next connection', async () => {
    const dialled: string[] = [];
    const answers = [['93.184.215.14'], ['127.0.0.1'], ['93.184.215.14', '127.0.0.1']];
    let call = 0;
    const client = new UpstreamClient({ connectTimeoutMs: 2000, headersTimeoutMs: 2000, resolver: async () => answers[Math.min(call++, answers.length - 1)] as string[], connector: redirectingConnector(s, dialled) });
    const origin = `http://rebind.test:${s.port}`;
    assert.equal((await get(client, origin, STRICT)).status, 204);
    // The sentinel closes each connection, so every request is a fresh connect and a fresh lookup.
    assert.equal((await get(client, origin, STRICT)).code, 'SLUICE_ERR_UPSTREAM_REFUSED');
    assert.equal((await get(client, origin, STRICT)).code, 'SLUICE_ERR_UPSTREAM_REFUSED');
    assert.deepEqual(dialled, ['93.184.215.14']);
    assert.equal(call, 3);
    await client.close();
  });

  it('never follows a redirect (301, 302, 303, 307, 308): the client gets the 3xx, the target sees no connection', async () => {
    const target = await sentinel();
    const up = await startFakeUpstream((req, res) => {
      const code = Number(req.url?.split('/')[2]);
      res.writeHead(code, { location: `http://127.0.0.1:${target.port}/mcp` }).end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/r', upstream: `${up.url}/r` }] });
    try {
      for (const code of [301, 302, 303, 307, 308]) {
        const r = await send(`${gw.base}/r/${code}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
        assert.equal(r.status, code);
        assert.equal(r.headers['location'], `http://127.0.0.1:${target.port}/mcp`);
      }
      assert.equal(target.connections, 0);
    } finally {
      await gw.close();
      await up.close();
      await target.close();
    }
  });

  it('ignores HTTP_PROXY, HTTPS_PROXY and ALL_PROXY for upstreams', async () => {
    const proxy = await sentinel();
    const up = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const saved = { ...process.env };
    for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) process.env[k] = `http://127.0.0.1:${proxy.port}`;
    try {
      const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
      try {
        const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
        assert.equal(r.status, 200);
        assert.equal(up.requests.length, 1);
        assert.equal(proxy.connections, 0);
      } finally {
        await gw.close();
      }
    } finally {
      for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await up.close();
      await proxy.close();
    }
  });

  it('answers a refused connect with 502 that names no address, logs a security event, and health checks never connect either', async () => {
    let lookups = 0;
    const gw = await startTestGateway(
      { routes: [{ path: '/mcp', upstream: `http://evil.test:${s.port}/mcp`, egress: { strict: true }, healthCheck: { interval: '50ms' } }] },
      { resolver: async () => (lookups++, ['127.0.0.1']) },
    );
    const before = s.connections;
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list', {}, 9) });
      assert.equal(r.status, 502);
      const body = JSON.parse(r.body.toString()) as { id: number; error: { message: string; data: { sluice: string } } };
      assert.equal(body.id, 9);
      assert.equal(body.error.data.sluice, 'SLUICE_ERR_UPSTREAM_REFUSED');
      assert.match(body.error.message, /not allowed/);
      assert.doesNotMatch(r.body.toString(), /127\.0\.0\.1|evil\.test/);
      const event = gw.logs.find((l) => l['security'] === 'upstream-address-refused');
      assert.equal(event?.['rule'], 'loopback');
      assert.equal(event?.['level'], 'warn');
      await waitFor(() => lookups >= 4, 3000, 'health checks');
      assert.equal(s.connections - before, 0, 'neither traffic nor health checks reached the sentinel');
    } finally {
      await gw.close();
    }
  });

  it('refuses to start with a configured route the policy refuses as written', async () => {
    await assert.rejects(
      startTestGateway({ routes: [{ path: '/m', upstream: 'http://169.254.169.254/latest' }] }),
      (err: Error) => /egress policy: cloud metadata addresses are not allowed \(metadata\)/.test(err.message),
    );
    await assert.rejects(startTestGateway({ routes: [{ path: '/m', upstream: `http://127.0.0.1:${s.port}/`, egress: { strict: true } }] }), /loopback/);
  });
  it('counts a hanging DNS lookup against the connect timeout: 504, never a hang', async () => {
    const client = new UpstreamClient({ connectTimeoutMs: 200, headersTimeoutMs: 60_000, resolver: () => new Promise(() => undefined) });
    const t0 = performance.now();
    const r = await get(client, 'http://slow-dns.test:8080', STRICT);
    assert.equal(r.code, 'SLUICE_ERR_UPSTREAM_TIMEOUT', JSON.stringify(r));
    assert.ok(performance.now() - t0 < 2000);
    await client.close();
  });
});
