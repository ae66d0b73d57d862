// Host and Origin allow lists per listener: the DNS-rebinding defence on loopback listeners,
// cross-origin refusals everywhere, 403 with a JSON-RPC error before anything reaches the
// upstream; the official conformance scenario passes through Sluice in front of an upstream
// that has no protection of its own.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { startProbe } from '../../src/probe/probe-server.ts';
import { runConformance } from '../conformance-harness.ts';
import { freePort, JSON_HEADERS, rpc, send, spawnSluice, startFakeUpstream, startTestGateway, RPC_OK } from '../helpers.ts';

const ok = (_req: unknown, res: ServerResponse) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);

describe('Host and Origin allow lists', () => {
  it('on a loopback listener: loopback and listed names only; same-origin, loopback or listed origins only', async () => {
    const up = await startFakeUpstream(ok);
    const gw = await startTestGateway({
      listen: [{ host: '127.0.0.1', port: 0, allowHosts: ['mcp.local', '*.dev.example'], allowOrigins: ['https://app.example'] }],
      routes: [
        { path: '/mcp', upstream: `${up.url}/mcp` },
        { path: '/web', upstream: `${up.url}/mcp`, cors: { allowOrigins: ['https://cors.example'] } },
      ],
    });
    try {
      const self = `127.0.0.1:${gw.port}`;
      const cases: [string, string, string | undefined, number, string?][] = [
        ['/mcp', self, undefined, 200],
        ['/mcp', `localhost:${gw.port}`, 'http://localhost:5173', 200],
        ['/mcp', `[::1]:${gw.port}`, undefined, 200],
        ['/mcp', 'mcp.local', undefined, 200],
        ['/mcp', 'a.dev.example', undefined, 200],
        ['/mcp', self, `http://${self}`, 200],
        ['/mcp', self, 'https://app.example', 200],
        ['/mcp', self, 'http://127.0.0.1:3000', 200],
        ['/web', self, 'https://cors.example', 200],
        ['/mcp', 'evil.example.com', undefined, 403, 'SLUICE_ERR_HOST_NOT_ALLOWED'],
        ['/mcp', `evil.example.com:${gw.port}`, `http://evil.example.com:${gw.port}`, 403, 'SLUICE_ERR_HOST_NOT_ALLOWED'],
        ['/mcp', 'dev.example', undefined, 403, 'SLUICE_ERR_HOST_NOT_ALLOWED'],
        ['/mcp', 'mcp.local.evil.example', undefined, 403, 'SLUICE_ERR_HOST_NOT_ALLOWED'],
        ['/mcp', self, 'https://evil.example', 403, 'SLUICE_ERR_ORIGIN_NOT_ALLOWED'],
        ['/mcp', self, 'null', 403, 'SLUICE_ERR_ORIGIN_NOT_ALLOWED'],
        ['/mcp', self, 'https://cors.example', 403, 'SLUICE_ERR_ORIGIN_NOT_ALLOWED'],
        ['/mcp', self, 'http://localhost.evil.example', 403, 'SLUICE_ERR_ORIGIN_NOT_ALLOWED'],
      ];
      for (const [path, host, origin, status, code] of cases) {
        const before = up.requests.length;
        for (const method of ['POST', 'GET']) {
          const r = await send(`${gw.base}${path}`, { method, headers: { ...JSON_HEADERS, host, ...(origin ? { origin } : {}) }, ...(method === 'POST' ? { body: rpc('ping') } : {}) });
          assert.equal(r.status, status, `${method} ${path} Host ${host} Origin ${origin}`);
          if (code) {
            const body = JSON.parse(r.body.toString()) as { jsonrpc: string; id: unknown; error: { code: number; data: { sluice: string } } };
            assert.equal(body.jsonrpc, '2.0');
            assert.equal(body.id, null);
            assert.equal(body.error.code, -32000);
            assert.equal(body.error.data.sluice, code);
          }
        }
        if (code) assert.equal(up.requests.length, before, 'refused requests never reach the upstream');
      }
      await new Promise((r) => setTimeout(r, 200));
      const refusals = gw.logs.filter((l) => l['msg'] === 'access' && l['status'] === 403);
      assert.ok(refusals.every((l) => l['security'] === 'host-rejected' || l['security'] === 'origin-rejected'));
      assert.equal(refusals.filter((l) => l['security'] === 'host-rejected').length, 8);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('on a listener bound to all interfaces: Host unchecked unless listed, cross-origin refused', async () => {
    const up = await startFakeUpstream(ok);
    const open = await startTestGateway({ listen: [{ host: '0.0.0.0', port: 0 }], routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    const listed = await startTestGateway({ listen: [{ host: '0.0.0.0', port: 0, allowHosts: ['mcp.example.com'] }], routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const post = (gw: typeof open, host: string, origin?: string) => send(`http://127.0.0.1:${gw.port}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, host, ...(origin ? { origin } : {}) }, body: rpc('ping') });
      assert.equal((await post(open, 'mcp.example.com')).status, 200);
      assert.equal((await post(open, 'anything.example')).status, 200);
      assert.equal((await post(open, 'mcp.example.com', 'https://mcp.example.com')).status, 200, 'same-origin');
      assert.equal((await post(open, 'mcp.example.com', 'https://evil.example')).status, 403);
      assert.equal((await post(listed, 'mcp.example.com')).status, 200);
      assert.equal((await post(listed, 'evil.example')).status, 403);
    } finally {
      await open.close();
      await listed.close();
      await up.close();
    }
  });

  it('the conformance dns-rebinding-protection scenario passes through Sluice in front of an unprotected upstream', async () => {
    const probe = await startProbe({ instance: 'unprotected' }); // answers any Host and Origin
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: probe.url }] });
    try {
      const direct = await runConformance(probe.url, 'scenario:dns-rebinding-protection');
      const via = await runConformance(`${gw.base}/mcp`, 'scenario:dns-rebinding-protection');
      assert.equal(direct.checks.get('dns-rebinding-protection:localhost-host-rebinding-rejected'), 'FAILURE', direct.output.slice(-2000));
      assert.equal(via.checks.get('dns-rebinding-protection:localhost-host-rebinding-rejected'), 'SUCCESS', via.output.slice(-2000));
      assert.equal(via.checks.get('dns-rebinding-protection:localhost-host-valid-accepted'), 'SUCCESS');
    } finally {
      await gw.close();
      await probe.close();
    }
  });

  it('the quick form --allow-host adds a name the loopback listener answers', async () => {
    const up = await startFakeUpstream(ok);
    const port = await freePort();
    const sluice = await spawnSluice(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', `${up.url}/mcp`, '--allow-host', 'mcp.local'], `127.0.0.1:${port}/mcp`);
    try {
      const post = (host: string) => send(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, host }, body: rpc('ping') });
      assert.equal((await post('mcp.local')).status, 200);
      assert.equal((await post(`localhost:${port}`)).status, 200);
      assert.equal((await post('evil.example')).status, 403);
    } finally {
      await sluice.stop();
      await up.close();
    }
  });

  it('the admin listener refuses foreign Host names and cross-origin pages too', async () => {
    const up = await startFakeUpstream(ok);
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], admin: { listen: { host: '127.0.0.1', port: 0 } } });
    try {
      const admin = `http://127.0.0.1:${gw.gw.adminAddress!.port}`;
      assert.equal((await send(`${admin}/metrics`)).status, 200);
      assert.equal((await send(`${admin}/healthz`, { headers: { host: `localhost:${gw.gw.adminAddress!.port}` } })).status, 200);
      const rebound = await send(`${admin}/metrics`, { headers: { host: 'attacker.example' } });
      assert.equal(rebound.status, 403);
      assert.ok(!rebound.body.toString().includes('sluice_'), 'no metrics behind a foreign Host');
      assert.equal((await send(`${admin}/metrics`, { headers: { origin: 'https://attacker.example' } })).status, 403);
      assert.ok(gw.logs.some((l) => l['security'] === 'admin-host-origin-rejected'));
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
