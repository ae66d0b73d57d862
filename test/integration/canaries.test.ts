// Canary strings in every place a secret travels — Authorization in each casing, cookies,
// Mcp-Session-Id, Mcp-Param-*, query strings, URL userinfo, tool arguments and results, SSE
// events, upstream error bodies — sent through every path (JSON and SSE answers, upstream
// errors, timeouts, Sluice's own refusals) with payload logging on (rules set) and off. No
// canary may appear in a log line, the metrics or an error body Sluice wrote, while the fields
// the rules keep stay readable.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { JSON_HEADERS, send, startFakeUpstream, startTestGateway } from '../helpers.ts';

const MARK = 'c4n4ry';
const canary = (what: string) => `${MARK}${what}${randomUUID().replace(/-/g, '')}`;

function rpcCall(id: number, name: string, args: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: { progressToken: `p${id}` } } });
}

describe('secrets never reach logs, metrics or Sluice error bodies', () => {
  it('holds for every placement and path, with payload logging on and off', async () => {
    const up = await startFakeUpstream((req, res, body) => {
      const msg = JSON.parse(body.toString() || '{}') as { id?: number; params?: { name?: string } };
      const id = msg.id ?? null;
      switch (msg.params?.name) {
        case 'json_secret':
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `use Bearer ${canary('result')}` }], structuredContent: { keep: 'visible-result', api_key: canary('apikey'), nested: { client_secret: canary('nested') } } } }),
          );
        case 'sse_secret':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: `p${id}`, progress: 1, message: `token eyJhbGciOiJIUzI1NiJ9.${canary('jwt')}.c2ln and visible-event` } })}\n\n`);
          return void res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `connect postgres://app:${canary('urlpw')}@db.internal/x` }], password: canary('pw') } })}\n\n`);
        case 'error_secret':
          return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: `db failed: token=${canary('err')} sk-${canary('sk')}` } }));
        case 'text_error':
          return void res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream crashed with ${canary('plain')}`);
        case 'hang':
          return new Promise(() => {}); // never answers: Sluice times out
        default:
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
      }
    });
    const rules = { enabled: true, redactPaths: ['params.arguments.ssn'], redactFields: ['diagnosis'], hashFields: ['customer'] };
    const gw = await startTestGateway({
      routes: [
        { path: '/logged', upstream: `${up.url}/mcp`, logPayloads: rules },
        { path: '/plain', upstream: `${up.url}/mcp` },
      ],
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      timeouts: { responseHeaders: '300ms' },
    });
    const sluiceErrors: string[] = [];
    const upstreamBodies: string[] = [];
    try {
      const casings = ['Authorization', 'authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn'];
      let id = 0;
      for (const route of ['/logged', '/plain']) {
        for (const [i, tool] of ['json_secret', 'sse_secret', 'error_secret', 'text_error', 'hang', 'plain'].entries()) {
          const args = { ssn: canary('ssn'), password: canary('argpw'), diagnosis: canary('diag'), customer: canary('cust'), note: `key sk-${canary('argsk')}`, keep: 'visible-arg' };
          // Raw header pairs keep each casing; node adds no Host to them.
          const headers: [string, string][] = [
            ['host', `127.0.0.1:${gw.port}`],
            ['content-type', 'application/json'],
            ['accept', 'application/json, text/event-stream'],
            [casings[i % casings.length]!, `Bearer ${canary('auth')}`],
            ['cookie', `sid=${canary('cookie')}; theme=dark`],
            ['mcp-param-region', canary('param')],
          ];
          const r = await send(`${gw.base}${route}?token=${canary('query')}&api_key=${canary('query2')}`, { method: 'POST', headers: headers.flat() as unknown as [string, string][], body: rpcCall(++id, tool, args) });
          (r.body.includes('"sluice"') ? sluiceErrors : upstreamBodies).push(r.body.toString());
        }
        // A forged session id, and a request target in absolute form with userinfo.
        const forged = await send(`${gw.base}${route}`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': canary('session') }, body: rpcCall(++id, 'plain', {}) });
        assert.equal(forged.status, 404);
        sluiceErrors.push(forged.body.toString());
        const userinfo = canary('userinfo');
        const raw = await new Promise<string>((resolve, reject) => {
          const s = connect(gw.port, '127.0.0.1', () => {
            const body = rpcCall(++id, 'plain', {});
            s.write(`POST http://admin:${userinfo}@127.0.0.1:${gw.port}${route}?secret=${canary('absq')} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
          });
          let got = '';
          s.on('data', (d: Buffer) => (got += d.toString()));
          s.on('end', () => resolve(got));
          s.on('error', reject);
        });
        assert.match(raw, /^HTTP\/1\.1 200/);
      }
      const metrics = await (await fetch(`http://127.0.0.1:${gw.gw.adminAddress!.port}/metrics`)).text();
      await new Promise((r) => setTimeout(r, 400));
      const log = gw.rawLog();

      assert.ok(upstreamBodies.some((b) => b.includes(MARK)), 'the canaries did travel (upstream bodies reach the client as they are)');
      assert.equal(sluiceErrors.length >= 3, true, `Sluice answered itself: ${sluiceErrors.length}`);
      for (const b of sluiceErrors) assert.ok(!b.includes(MARK), `Sluice error body leaks: ${b}`);
      assert.ok(!metrics.includes(MARK), 'metrics leak');
      const leaks = log.split('\n').filter((l) => l.includes(MARK));
      assert.deepEqual(leaks, [], 'log lines leak');

      // Payload logging happened on /logged only, and kept what the rules keep.
      const payloads = gw.logs.filter((l) => l['msg'] === 'payload');
      assert.ok(payloads.length >= 10, `${payloads.length} payload records`);
      assert.ok(payloads.every((l) => l['route'] === '/logged'));
      for (const visible of ['visible-arg', 'visible-result', 'visible-event']) assert.ok(log.includes(visible), `${visible} is kept`);
      for (const marker of ['[REDACTED]', '[REDACTED:credential]', '[REDACTED:jwt]', '[REDACTED:api-key]', '[REDACTED:url-password]', '[REDACTED:assignment]', '[HASH:']) {
        assert.ok(log.includes(marker), `${marker} appears`);
      }
      assert.ok(gw.logs.some((l) => l['msg'] === 'access' && l['outcome'] === 'SLUICE_ERR_UPSTREAM_TIMEOUT'), 'the hanging call timed out');
      // The same customer hashes alike across records only when the value is the same.
      const hashes = [...log.matchAll(/\[HASH:([0-9a-f]{16})\]/g)].map((m) => m[1]);
      assert.equal(new Set(hashes).size, hashes.length, 'distinct customers, distinct hashes');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
