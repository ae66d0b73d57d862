// Session tokens on the wire: clients hold Sluice tokens, upstreams their own ids; a token that
// does not open is answered 404 without an upstream call; gateways sharing keys route each
// other's sessions (and a restarted one keeps them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { newKeyText } from '../../src/session/key-ring.ts';
import { sealSession } from '../../src/session/token.ts';
import { JSON_HEADERS, rpc, send, startDemoUpstream, startFakeUpstream, startTestGateway, upstreamSessionOf, type TestGateway } from '../helpers.ts';

describe('session tokens', () => {
  it('answers a tampered, foreign or other-route token with 404 and never calls the upstream', async () => {
    const fake = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }, { path: '/other', upstream: `${fake.url}/other` }] });
    try {
      const good = sealSession(gw.gw.ctx.sessions, { route: '/mcp', replica: `${fake.url}/mcp`, upstreamSession: 'u1', principal: undefined, issuedAt: 1 });
      const tampered = good.slice(0, 20) + (good[20] === 'A' ? 'B' : 'A') + good.slice(21);
      const foreign = sealSession((await startTestGateway({ routes: [{ path: '/mcp', upstream: fake.url }] }).then(async (g) => (await g.close(), g))).gw.ctx.sessions, {
        route: '/mcp',
        replica: fake.url,
        upstreamSession: 'u1',
        principal: undefined,
        issuedAt: 1,
      });
      for (const [sid, path] of [[tampered, '/mcp'], [foreign, '/mcp'], ['plain-upstream-id', '/mcp'], [good, '/other']] as const) {
        for (const method of ['POST', 'GET', 'DELETE']) {
          const r = await send(`${gw.base}${path}`, { method, headers: { ...JSON_HEADERS, 'mcp-session-id': sid }, body: method === 'POST' ? rpc('tools/list', {}, 7) : undefined });
          assert.equal(r.status, 404, `${method} ${path} with ${sid.slice(0, 12)}…`);
          if (method === 'POST') assert.deepEqual(JSON.parse(r.body.toString()).error.code, -32001);
        }
      }
      assert.equal(fake.requests.length, 0, 'no upstream call for a token that does not open');
      const ok = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': good }, body: rpc('tools/list') });
      assert.equal(ok.status, 200);
      assert.equal(fake.requests[0]?.headers['mcp-session-id'], 'u1');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('warns when it had to generate a key, and refuses an upstream session id it cannot seal', async () => {
    const fake = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'x'.repeat(2000) }).end('{}'));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      assert.ok(gw.logs.some((l) => l['level'] === 'warn' && String(l['msg']).includes('no session keys configured')));
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize') });
      assert.equal(r.status, 502);
      assert.equal(r.headers['mcp-session-id'], undefined);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('lets two gateways with one key ring serve alternate requests of the same SDK session, and a restarted one too', async () => {
    const upstream = await startDemoUpstream();
    const keys = [newKeyText(), newKeyText()];
    const routes = [{ path: '/mcp', upstream: upstream.url }];
    const a = await startTestGateway({ routes, sessions: { keys } });
    const b = await startTestGateway({ routes, sessions: { keys: [keys[0] as string] } });
    let c: TestGateway | undefined;
    const ports = [a.port, b.port];
    let turn = 0;
    const seen: number[] = [];
    // Every request (not every connection) goes to the next gateway in turn.
    const alternating: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      url.port = String(ports[turn++ % ports.length]);
      seen.push(Number(url.port));
      return fetch(url, init);
    };
    try {
      const client = new Client({ name: 't', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(`${a.base}/mcp`), { fetch: alternating });
      await client.connect(transport);
      const token = transport.sessionId as string;
      assert.equal(upstreamSessionOf(b, token), upstreamSessionOf(a, token), 'both gateways open the token');
      for (let i = 0; i < 6; i++) {
        const progress: number[] = [];
        const r = await client.callTool({ name: 'slow_count', arguments: { steps: 2, intervalMs: 10 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
        assert.deepEqual(r.content, [{ type: 'text', text: 'counted to 2' }]);
        assert.deepEqual(progress, [1, 2]);
      }
      assert.ok(seen.includes(a.port) && seen.includes(b.port), 'requests went through both gateways');
      assert.equal(transport.sessionId, token, 'the token stayed the same across gateways');

      // Gateway A restarts (a new process would be the same: the keys are all it needs).
      await a.close();
      c = await startTestGateway({ routes, sessions: { keys } });
      ports[0] = c.port;
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0, 'the session survived the restart');
      await client.close();
    } finally {
      await a.close();
      await b.close();
      await c?.close();
      await upstream.close();
    }
  });
});
