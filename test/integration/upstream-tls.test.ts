// TLS to upstreams: verified by default, a per-route CA bundle, an SNI/verification name
// override, client certificates for upstreams that demand mTLS, and verification off only when
// written out (with a warning). A refused certificate is a clear 502 and a security log line.
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import { makeTestCa } from '../fixtures/test-ca.ts';
import { JSON_HEADERS, rpc, send, startTestGateway, RPC_OK } from '../helpers.ts';

async function httpsUpstream(options: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean }): Promise<{ url: string; server: Server; clients: string[] }> {
  const clients: string[] = [];
  const server = createHttpsServer({ cert: options.cert, key: options.key, ...(options.requestCert ? { requestCert: true, rejectUnauthorized: true, ca: options.ca } : {}) }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate?.();
    clients.push(peer?.subject ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server, clients };
}

describe('upstream TLS', () => {
  it('verifies by default, takes a CA bundle, a name override and client certificates; off only when written out', async () => {
    const serverCa = makeTestCa('Upstream CA');
    const clientCa = makeTestCa('Client CA', serverCa.dir);
    const ip = serverCa.issue('ip', '127.0.0.1', ['IP:127.0.0.1']);
    const named = serverCa.issue('named', 'mcp.internal', ['DNS:mcp.internal']);
    const client = clientCa.issue('sluice-client', 'sluice-gateway', []);
    const plain = await httpsUpstream(ip);
    const byName = await httpsUpstream(named);
    const mtls = await httpsUpstream({ ...ip, ca: clientCa.ca, requestCert: true });
    const gw = await startTestGateway({
      routes: [
        { path: '/trusted', upstream: plain.url, tls: { ca: serverCa.caFile } },
        { path: '/system', upstream: plain.url },
        { path: '/wrong-name', upstream: plain.url, tls: { ca: serverCa.caFile, servername: 'other.internal' } },
        { path: '/by-name', upstream: byName.url, tls: { ca: serverCa.caFile, servername: 'mcp.internal' } },
        { path: '/mtls-none', upstream: mtls.url, tls: { ca: serverCa.caFile } },
        { path: '/mtls', upstream: mtls.url, tls: { ca: serverCa.caFile, cert: client.certFile, key: client.keyFile } },
        { path: '/unverified', upstream: plain.url, tls: { verify: false } },
      ],
    });
    try {
      const call = async (path: string) => {
        const r = await send(`${gw.base}${path}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
        return { status: r.status, body: r.body.toString() };
      };
      assert.equal((await call('/trusted')).status, 200);
      assert.equal((await call('/by-name')).status, 200, 'verified against the overriding name');
      assert.equal((await call('/unverified')).status, 200);
      const before = mtls.clients.length;
      assert.equal((await call('/mtls')).status, 200);
      assert.match(mtls.clients.at(-1) ?? '', /CN=sluice-gateway/, 'the upstream saw the client certificate');
      assert.equal(mtls.clients.length, before + 1);
      // Under TLS 1.3 an upstream refuses a missing client certificate after the handshake: the
      // connection just closes, so this one is a plain 502.
      assert.equal((await call('/mtls-none')).status, 502);
      for (const path of ['/system', '/wrong-name']) {
        const r = await call(path);
        assert.equal(r.status, 502, path);
        assert.match(r.body, /Upstream TLS verification failed: [A-Z_]+/, path);
        assert.match(r.body, /SLUICE_ERR_UPSTREAM_TLS/);
      }
      await new Promise((r) => setTimeout(r, 200));
      const refused = gw.logs.filter((l) => l['security'] === 'upstream-tls-failed' && l['msg'] === 'upstream certificate refused');
      assert.deepEqual(refused.map((l) => l['route']).sort(), ['/system', '/wrong-name']);
      assert.match(String(refused.find((l) => l['route'] === '/wrong-name')?.['reason']), /ALTNAME|HOSTNAME/);
      assert.ok(gw.logs.some((l) => l['level'] === 'warn' && l['route'] === '/unverified' && String(l['msg']).includes('TLS verification of upstream certificates is OFF')), 'a warning at start');
    } finally {
      await gw.close();
      for (const u of [plain, byName, mtls]) {
        u.server.closeAllConnections();
        u.server.close();
      }
    }
  });

  it('refuses a config whose CA file cannot be read, or a certificate without its key', async () => {
    await assert.rejects(startTestGateway({ routes: [{ path: '/mcp', upstream: 'https://127.0.0.1:9/mcp', tls: { ca: '/nonexistent/ca.pem' } }] }), /routes \(path \/mcp\): tls\.ca: ENOENT/);
    await assert.rejects(startTestGateway({ routes: [{ path: '/mcp', upstream: 'https://127.0.0.1:9/mcp', tls: { cert: '/x.pem' } }] }), /cert and key go together/);
  });
});
