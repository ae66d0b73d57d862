// The probe: an SDK MCP server that reports what reached it, answering behind any Host.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { startProbe } from '../../src/probe/probe-server.ts';
import { JSON_HEADERS, send, startTestGateway } from '../helpers.ts';

describe('sluice probe', () => {
  it('reports through Sluice which instance answered and the headers it got; emits timed events; records every request', async () => {
    const probe = await startProbe({ instance: 'p1' });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: probe.url }] });
    try {
      const client = new Client({ name: 'doctor', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), { requestInit: { headers: { authorization: 'Bearer t0k', 'mcp-param-region': 'eu' } } }));
      const info = JSON.parse(((await client.callTool({ name: 'probe_info', arguments: {} })).content as { text: string }[])[0]!.text) as { instance: string; headers: Record<string, string> };
      assert.equal(info.instance, 'p1');
      assert.equal(info.headers['authorization'], 'Bearer t0k');
      assert.equal(info.headers['mcp-param-region'], 'eu');
      assert.ok(info.headers['mcp-session-id'], 'the upstream sees its own session id');
      assert.ok(info.headers['x-forwarded-for']);
      const events: { i: number; sentAt: number; arrived: number }[] = [];
      await client.callTool({ name: 'emit_events', arguments: { count: 3, intervalMs: 100 } }, undefined, { onprogress: (p) => void events.push({ ...(JSON.parse(String(p.message)) as { i: number; sentAt: number }), arrived: Date.now() }) });
      assert.deepEqual(events.map((e) => e.i), [1, 2, 3]);
      for (const e of events) assert.ok(e.arrived - e.sentAt < 1000, `event ${e.i} took ${e.arrived - e.sentAt} ms`);
      assert.equal(((await client.callTool({ name: 'large_payload', arguments: { bytes: 100_000 } })).content as { text: string }[])[0]!.text.length, 100_000);
      assert.equal(((await client.callTool({ name: 'receive', arguments: { data: 'y'.repeat(50_000) } })).content as { text: string }[])[0]!.text, '50000');
      await client.close();
      const recorded = (await (await fetch(new URL('/probe/requests', probe.url))).json()) as { instance: string; records: { method: string; headers: Record<string, string> }[] };
      assert.equal(recorded.instance, 'p1');
      assert.ok(recorded.records.some((r) => r.method === 'GET' && r.headers['accept']?.includes('text/event-stream')), 'the standalone GET was recorded');
      assert.ok(recorded.records.filter((r) => r.method === 'POST').length >= 6);
      // Stateless 2026-07-28 through the same probe.
      const v2 = new ClientV2({ name: 'doctor2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await v2.connect(new TransportV2(new URL(`${gw.base}/mcp`)));
      const info2 = JSON.parse(((await v2.callTool({ name: 'probe_info', arguments: {} })).content as { text: string }[])[0]!.text) as { headers: Record<string, string> };
      assert.equal(info2.headers['mcp-method'], 'tools/call');
      await v2.close();
    } finally {
      await gw.close();
      await probe.close();
    }
  });

  it('answers requests for any Host (it sits behind proxies), and the CLI starts and stops it', async () => {
    const probe = await startProbe({ instance: 'p2' });
    try {
      const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
      const r = await send(probe.url, { method: 'POST', headers: { ...JSON_HEADERS, host: 'mcp.example.com', origin: 'https://app.example.com' }, body: init });
      assert.equal(r.status, 200);
    } finally {
      await probe.close();
    }
    const child = spawn(process.execPath, [new URL('../../bin/sluice.js', import.meta.url).pathname, 'probe', '--listen', '127.0.0.1:0', '--instance', 'cli'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /MCP at (\S+)/.exec(err);
        if (m?.[1]) resolve(m[1]);
      });
      child.once('exit', () => reject(new Error(err)));
    });
    const health = (await (await fetch(new URL('/probe/health', url))).json()) as { instance: string };
    assert.equal(health.instance, 'cli');
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
  });
});
