// A TLS listener: PEM files from a test CA made here, TLS 1.2+ only, an official SDK client over
// https, X-Forwarded-Proto https upstream, and a renewed certificate served to new connections
// without a restart (a broken renewal keeps the running one).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as http2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { makeTestCa } from '../fixtures/test-ca.ts';
import { rpc, startDemoUpstream, startFakeUpstream, startTestGateway, waitFor, RPC_OK } from '../helpers.ts';

/** A fresh CA and a server certificate for 127.0.0.1/localhost signed by it: `dir`/next.pem, next.key; returns the CA. */
function makeCerts(dir: string, cn: string): Buffer {
  const ca = makeTestCa(`Sluice Test CA ${cn}`, dir);
  ca.issue('next', cn, ['IP:127.0.0.1', 'DNS:localhost']);
  return ca.ca;
}

function peerCertificate(port: number, ca: Buffer, maxVersion?: 'TLSv1.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(maxVersion ? { maxVersion, minVersion: 'TLSv1' } : {}) }, () => {
      const cn = s.getPeerX509Certificate()?.subject ?? '';
      s.end();
      resolve(cn);
    });
    s.once('error', reject);
  });
}

describe('TLS listener', () => {
  it('serves MCP over TLS 1.2+ with the configured PEM files and reloads them when they change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    const ca = makeCerts(dir, 'first.sluice.test');
    writeFileSync(join(dir, 'server.pem'), readFileSync(join(dir, 'next.pem')));
    writeFileSync(join(dir, 'server.key'), readFileSync(join(dir, 'next.key')));
    const up = await startDemoUpstream();
    const fwd = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({
      listen: [{ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') } }],
      routes: [
        { path: '/mcp', upstream: up.url },
        { path: '/echo', upstream: `${fwd.url}/mcp` },
      ],
    });
    try {
      const base = `https://127.0.0.1:${gw.port}`;
      const dispatcher = new Agent({ connect: { ca } });
      const client = new Client({ name: 'tls', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response> }));
      const r = await client.callTool({ name: 'slow_count', arguments: { steps: 2, intervalMs: 10 } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'counted to 2' }]);
      await client.close();
      await undiciFetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}', dispatcher });
      assert.equal(fwd.requests.at(-1)?.headers['x-forwarded-proto'], 'https');
      assert.match(await peerCertificate(gw.port, ca), /CN=first\.sluice\.test/);
      await assert.rejects(peerCertificate(gw.port, ca, 'TLSv1.1'), 'TLS 1.1 is refused');

      // A renewal: both files replaced; new connections get the new certificate.
      const ca2 = makeCerts(dir, 'second.sluice.test');
      writeFileSync(join(dir, 'server.key'), readFileSync(join(dir, 'next.key')));
      writeFileSync(join(dir, 'server.pem'), readFileSync(join(dir, 'next.pem')));
      await waitFor(() => gw.logs.some((l) => l['msg'] === 'TLS certificate reloaded'), 5000, 'reload');
      assert.match(await peerCertificate(gw.port, ca2), /CN=second\.sluice\.test/);
      assert.ok(new X509Certificate(readFileSync(join(dir, 'server.pem'))).subject.includes('second'));

      // A broken renewal is refused and the running certificate kept.
      writeFileSync(join(dir, 'server.pem'), 'not a certificate');
      await waitFor(() => gw.logs.some((l) => l['msg'] === 'TLS certificate reload failed; kept the running one'), 5000, 'failed reload');
      assert.match(await peerCertificate(gw.port, ca2), /CN=second\.sluice\.test/);
      await dispatcher.close();
    } finally {
      await gw.close();
      await up.close();
      await fwd.close();
    }
  });

  it('speaks HTTP/2 (ALPN h2) with SSE streamed per event, and HTTP/1.1 on the same port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-h2-'));
    const ca = makeCerts(dir, 'h2.sluice.test');
    const up = await startDemoUpstream();
    const fwd = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({
      listen: [{ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'next.pem'), key: join(dir, 'next.key') } }],
      routes: [
        { path: '/mcp', upstream: up.url },
        { path: '/echo', upstream: `${fwd.url}/mcp` },
      ],
    });
    const session = http2Connect(`https://127.0.0.1:${gw.port}`, { ca });
    try {
      const exchange = (headers: Record<string, string>, body: string) =>
        new Promise<{ status: number; headers: Record<string, unknown>; chunks: { at: number; text: string }[] }>((resolve, reject) => {
          const t0 = performance.now();
          const req = session.request({ ':method': 'POST', ':path': headers[':path'] ?? '/mcp', 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers });
          const chunks: { at: number; text: string }[] = [];
          let head: Record<string, unknown> = {};
          req.on('response', (h) => (head = h as Record<string, unknown>));
          req.on('data', (d: Buffer) => chunks.push({ at: performance.now() - t0, text: d.toString() }));
          req.on('end', () => resolve({ status: Number(head[':status']), headers: head, chunks }));
          req.on('error', reject);
          req.end(body);
        });
      const init = await exchange({}, rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'h2', version: '1' } }));
      assert.equal((session.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2');
      assert.equal(init.status, 200);
      const sid = String(init.headers['mcp-session-id']);
      assert.ok(sid.length > 20, 'a sealed session token');
      const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      assert.equal((await exchange(headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))).status, 202);
      const call = await exchange(headers, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow_count', arguments: { steps: 3, intervalMs: 200 }, _meta: { progressToken: 'p' } } }));
      assert.equal(call.status, 200);
      const progress = call.chunks.filter((c) => c.text.includes('notifications/progress'));
      assert.equal(progress.length, 3, 'one chunk per event');
      assert.ok(progress[2]!.at - progress[0]!.at >= 300, 'events arrive as they are sent, not all at the end');
      assert.match(call.chunks.map((c) => c.text).join(''), /counted to 3/);
      await exchange({ ':path': '/echo' }, rpc('ping'));
      assert.equal(fwd.requests.at(-1)?.headers['x-forwarded-proto'], 'https');
      assert.equal(fwd.requests.at(-1)?.headers['x-forwarded-host'], `127.0.0.1:${gw.port}`);
      assert.ok(!Object.keys(fwd.requests.at(-1)!.headers).some((k) => k.startsWith(':')), 'no pseudo-headers upstream');
      const refused = await exchange({ ':authority': 'evil.example' }, rpc('ping'));
      assert.equal(refused.status, 403, 'the Host check reads :authority');
    } finally {
      session.close();
      await gw.close();
      await up.close();
      await fwd.close();
    }
  });

  it('refuses to start with an unreadable or mismatched certificate, saying which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-bad-'));
    makeCerts(dir, 'a.sluice.test');
    const other = makeTestCa('Other CA', dir).issue('other', 'other.sluice.test', ['DNS:localhost']);
    await assert.rejects(startTestGateway({ listen: [{ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'missing.pem'), key: join(dir, 'next.key') } }], routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }] }), /cannot read the TLS certificate or key/);
    await assert.rejects(startTestGateway({ listen: [{ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'next.pem'), key: other.keyFile } }], routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }] }), /next\.pem .*key values mismatch/i);
  });
});

describe('TLS listener deadlines (issue 15.3)', () => {
  it('an HTTP/1.1 head sent slowly over TLS is cut at timeouts.requestHeaders with 408', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    const ca = makeCerts(dir, 'slow.sluice.test');
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200).end());
    const gw = await startTestGateway({ listen: [{ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'next.pem'), key: join(dir, 'next.key') } }], routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], timeouts: { requestHeaders: '1s' } });
    try {
      const t0 = Date.now();
      const text = await new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: gw.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => s.write('POST /mcp HTTP/1.1\r\nHost: localhost\r\n'));
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString('latin1')));
        s.on('error', reject);
        s.on('close', () => resolve(data));
        setTimeout(() => s.destroy(), 8000).unref();
      });
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - t0 < 6000, 'cut by the header deadline, not the test timer');
      assert.equal(up.requests.length, 0);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
