// The official v2 SDK client (2026-07-28, stateless) through Sluice against the v2 upstream.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { accessLines, cuttingFetch, demoBehindSluice, upstreamSessionOf } from '../helpers.ts';

describe('SDK v2 client through Sluice (stateless 2026-07-28)', () => {
  const f = demoBehindSluice();

  it('discovers, lists tools and streams progress with mirrored headers checked on the way', async () => {
    const client = new Client({ name: 't2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`)));
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'echo', 'slow_count']);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'slow_count', arguments: { steps: 3, intervalMs: 50 } }, {
      onprogress: (p: { progress: number }) => progress.push(p.progress),
    });
    assert.deepEqual(progress, [1, 2, 3]);
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted to 3' }]);
    const calls = accessLines(f.sluice.logs).filter((l) => l['rpcMethod'] === 'tools/call');
    assert.ok(calls.length >= 1);
    assert.equal(calls.at(-1)?.['era'], 'stateless');
    assert.equal(calls.at(-1)?.['rpcName'], 'slow_count');
    await client.close();
  });
});

describe('SDK v2 client through Sluice (sessionful 2025-11-25 era)', () => {
  const f = demoBehindSluice();

  it('initializes a session, streams progress, gets GET-stream notifications, resumes a cut stream, and DELETEs', async () => {
    const cutter = cuttingFetch((body) => body.includes('"tools/call"') && body.includes('"steps":5'));
    const client = new Client({ name: 't2-legacy', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`), {
      fetch: cutter.fetch,
      reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 },
    });
    let listChanged = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      listChanged++;
    });
    await client.connect(transport);
    const sid = upstreamSessionOf(f.sluice, transport.sessionId);
    assert.ok(f.upstream.sessions.has(sid), 'sessionful era negotiated through Sluice');

    const progress: number[] = [];
    const first = await client.callTool({ name: 'slow_count', arguments: { steps: 3, intervalMs: 30 } }, { onprogress: (p: { progress: number }) => progress.push(p.progress) });
    assert.deepEqual(progress, [1, 2, 3]);
    assert.deepEqual(first.content, [{ type: 'text', text: 'counted to 3' }]);

    const deadline = Date.now() + 5000;
    while (listChanged === 0 && Date.now() < deadline) {
      f.upstream.sessions.get(sid)?.server.sendToolListChanged();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(listChanged > 0, 'standalone GET stream notification arrived');

    const resumedProgress: number[] = [];
    const resumed = await client.callTool({ name: 'slow_count', arguments: { steps: 5, intervalMs: 150 } }, { onprogress: (p: { progress: number }) => resumedProgress.push(p.progress), timeout: 15_000 });
    assert.ok(cutter.wasCut());
    assert.equal(cutter.resumedWith.length, 1, 'resumed once with Last-Event-ID');
    assert.deepEqual(resumedProgress, [1, 2, 3, 4, 5]);
    assert.deepEqual(resumed.content, [{ type: 'text', text: 'counted to 5' }]);

    await transport.terminateSession();
    for (let i = 0; i < 50 && f.upstream.sessions.has(sid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(f.upstream.sessions.has(sid), false, 'DELETE reached the upstream');
    await client.close();
  });
});
