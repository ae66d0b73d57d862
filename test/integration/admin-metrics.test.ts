// The admin listener's health, readiness and Prometheus metrics: counts after a scripted run
// with the official SDK client, refusals by error code, open streams and heartbeats, replica
// health, and label cardinality that stays bounded whatever clients send.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { freePort, JSON_HEADERS, rpc, send, spawnSluice, startDemoUpstream, startTestGateway, type TestGateway } from '../helpers.ts';

const adminUrl = (gw: TestGateway, path: string) => `http://127.0.0.1:${gw.gw.adminAddress!.port}${path}`;

async function scrape(gw: TestGateway): Promise<string> {
  const r = await fetch(adminUrl(gw, '/metrics'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return r.text();
}

/** The value of one sample line, e.g. value(text, 'sluice_requests_total{route="/mcp",method="initialize",status_class="2xx"}'). */
function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe('admin listener: health, readiness, metrics', () => {
  it('counts a scripted SDK run by route, method and status class, with bytes, streams, sessions and refusals', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url }], admin: { listen: { host: '127.0.0.1', port: 0 } }, timeouts: { heartbeat: '100ms' } });
    try {
      assert.deepEqual(await (await fetch(adminUrl(gw, '/healthz'))).json(), { status: 'ok' });
      assert.deepEqual(await (await fetch(adminUrl(gw, '/readyz'))).json(), { status: 'ready' });
      const clients: Client[] = [];
      for (let i = 0; i < 3; i++) {
        const c = new Client({ name: `m${i}`, version: '1' });
        await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`)));
        clients.push(c);
      }
      for (const c of clients) await c.listTools();
      for (let i = 0; i < 5; i++) await clients[0]!.callTool({ name: 'slow_count', arguments: { steps: 2, intervalMs: 10 } });
      // The standalone GET streams stay silent: heartbeats go out every 100 ms.
      await new Promise((r) => setTimeout(r, 350));
      await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': 'forged' }, body: rpc('tools/list') });
      await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: '{"jsonrpc":' });
      await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('vendor/secret-method-canary-7f3a') });
      await send(`${gw.base}/nowhere`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      await new Promise((r) => setTimeout(r, 50));
      const text = await scrape(gw);
      const req = (method: string, cls: string, route = '/mcp') => value(text, `sluice_requests_total{route="${route}",method="${method}",status_class="${cls}"}`);
      assert.equal(req('initialize', '2xx'), 3);
      assert.equal(req('notifications/initialized', '2xx'), 3);
      assert.equal(req('tools/list', '2xx'), 3);
      assert.equal(req('tools/call', '2xx'), 5);
      assert.equal(req('tools/list', '4xx'), 1, 'the forged session');
      assert.equal(req('none', '4xx'), 1, 'the malformed body has no method');
      assert.equal(['2xx', '4xx', '5xx'].reduce((n, cls) => n + (req('other', cls) ?? 0), 0), 1, 'an unknown method is "other"');
      assert.equal(req('none', '4xx', 'none'), 1, 'no route: nothing read, no method');
      assert.equal(value(text, 'sluice_refused_total{reason="SLUICE_ERR_SESSION_NOT_FOUND"}'), 1);
      assert.equal(value(text, 'sluice_refused_total{reason="SLUICE_ERR_PARSE"}'), 1);
      assert.equal(value(text, 'sluice_refused_total{reason="SLUICE_ERR_ROUTE_NOT_FOUND"}'), 1);
      assert.equal(value(text, 'sluice_sse_streams_open{route="/mcp"}'), 3, 'one standalone GET stream per client');
      assert.ok((value(text, 'sluice_heartbeats_total{route="/mcp"}') ?? 0) >= 3);
      assert.equal(value(text, 'sluice_sessions_active'), 3);
      assert.ok((value(text, 'sluice_request_bytes_total{route="/mcp"}') ?? 0) > 1000);
      assert.ok((value(text, 'sluice_response_bytes_total{route="/mcp"}') ?? 0) > 1000);
      assert.equal(value(text, 'sluice_request_duration_seconds_count{route="/mcp",method="tools/call"}'), 5);
      assert.equal(value(text, 'sluice_response_headers_seconds_count{route="/mcp",method="tools/call"}'), 5);
      assert.equal(value(text, `sluice_upstream_replica_healthy{route="/mcp",replica="${up.url}"}`), 1);
      assert.ok(value(text, 'sluice_process_resident_memory_bytes')! > 0, 'process metrics');
      assert.doesNotMatch(text, /canary|forged|secret/, 'no client-chosen string becomes a label');
      for (const c of clients) await c.close();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(value(await scrape(gw), 'sluice_sse_streams_open{route="/mcp"}'), 0, 'closed streams leave the gauge');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('keeps cardinality bounded after 10,000 distinct session ids, and no id appears', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url }], admin: { listen: { host: '127.0.0.1', port: 0 } }, logging: { access: false } });
    try {
      const before = (await scrape(gw)).split('\n').filter((l) => l.startsWith('sluice_') && !l.startsWith('sluice_process') && !l.startsWith('sluice_nodejs')).length;
      const ids: string[] = [];
      for (let batch = 0; batch < 200; batch++) {
        await Promise.all(
          Array.from({ length: 50 }, (_, i) => {
            const id = `sess-${batch}-${i}-${Math.random().toString(36).slice(2)}`;
            ids.push(id);
            return send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': id }, body: rpc('tools/list') });
          }),
        );
      }
      assert.equal(ids.length, 10_000);
      const text = await scrape(gw);
      const lines = text.split('\n').filter((l) => l.startsWith('sluice_') && !l.startsWith('sluice_process') && !l.startsWith('sluice_nodejs'));
      assert.ok(lines.length <= before + 40, `${lines.length} sample lines after 10,000 sessions (${before} before)`);
      assert.equal(value(text, 'sluice_requests_total{route="/mcp",method="tools/list",status_class="4xx"}'), 10_000);
      assert.equal(value(text, 'sluice_sessions_active'), 0, 'unknown sessions are not active sessions');
      for (const id of ids.slice(0, 50)) assert.ok(!text.includes(id));
      assert.ok(!text.includes('sess-'));
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('readiness fails while a route has no replica taking work; health still answers', async () => {
    const dead = await freePort();
    const gw = await startTestGateway({
      routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${dead}/mcp`, healthCheck: { interval: '100ms', unhealthyThreshold: 1 } }],
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    });
    try {
      let ready: Response | undefined;
      for (let i = 0; i < 50; i++) {
        ready = await fetch(adminUrl(gw, '/readyz'));
        if (ready.status === 503) break;
        await ready.body?.cancel();
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(ready!.status, 503);
      assert.deepEqual(await ready!.json(), { status: 'not ready', problems: ['route /mcp: no replica takes work'] });
      assert.equal((await fetch(adminUrl(gw, '/healthz'))).status, 200);
      assert.equal(value(await scrape(gw), `sluice_upstream_replica_healthy{route="/mcp",replica="http://127.0.0.1:${dead}/mcp"}`), 0);
      const api = await fetch(adminUrl(gw, '/admin/tenants/acme/upstreams'));
      assert.equal(api.status, 404, 'no token: the registration API is not there');
    } finally {
      await gw.close();
    }
  });

  it('the quick form --admin starts the admin listener and says where; --log-payloads logs redacted messages to stdout', async () => {
    const up = await startDemoUpstream();
    const port = await freePort();
    const admin = await freePort();
    const child = await spawnSluice(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', up.url, '--admin', `127.0.0.1:${admin}`, '--log-payloads'], `admin at http://127.0.0.1:${admin} (/healthz, /readyz, /metrics)`);
    try {
      assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 200);
      assert.match(await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text(), /# TYPE sluice_requests_total counter/);
      const init = rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cli', version: '1' }, token: 'Bearer abcdefghijklmnop' });
      assert.equal((await send(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: init })).status, 200);
      assert.equal(await child.stop(), 0);
      const records = child.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const request = records.find((r) => r['msg'] === 'payload' && r['payload'] === 'request');
      assert.ok(request, child.stdout());
      assert.deepEqual((request['message'] as { params: Record<string, unknown> }).params['token'], '[REDACTED]');
      assert.ok(records.some((r) => r['msg'] === 'payload' && r['payload'] === 'event'), 'the SSE answer was logged');
    } finally {
      await child.stop();
      await up.close();
    }
  });
});
