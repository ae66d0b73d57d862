// The official v1 SDK client through Sluice against the v1 sessionful upstream.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { accessLines, cuttingFetch, demoBehindSluice, upstreamSessionOf, waitFor } from '../helpers.ts';

describe('SDK v1 client through Sluice (sessionful Streamable HTTP)', () => {
  const f = demoBehindSluice();

  it('initializes, lists tools and streams progress of a tool call over SSE', async () => {
    const client = new Client({ name: 't', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`));
    await client.connect(transport);
    assert.ok(transport.sessionId, 'session id reached the client');
    const upstreamId = upstreamSessionOf(f.sluice, transport.sessionId);
    assert.ok(f.upstream.sessions.has(upstreamId), 'the token routes to a live upstream session');
    assert.notEqual(transport.sessionId, upstreamId, 'the upstream session id never reaches the client');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'echo', 'slow_count']);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'slow_count', arguments: { steps: 4, intervalMs: 50 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    assert.deepEqual(progress, [1, 2, 3, 4]);
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted to 4' }]);
    await client.close();
  });

  it('delivers server notifications on the standalone GET stream', async () => {
    const client = new Client({ name: 't', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`));
    let listChanged = 0;
    const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    await client.connect(transport);
    const sid = upstreamSessionOf(f.sluice, transport.sessionId);
    // The client opens the GET stream after initialized; wait until Sluice carries it.
    await waitFor(() => accessLines(f.sluice.logs).length >= 0 && f.upstream.sessions.has(sid));
    const session = f.upstream.sessions.get(sid);
    assert.ok(session);
    const deadline = Date.now() + 5000;
    while (listChanged === 0 && Date.now() < deadline) {
      session.server.sendToolListChanged();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(listChanged > 0, 'notification arrived over the GET stream');
    await client.close();
  });

  it('terminates the session with DELETE; the upstream forgets it and later use gets 404', async () => {
    const client = new Client({ name: 't', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`));
    await client.connect(transport);
    const sid = transport.sessionId as string;
    const upstreamId = upstreamSessionOf(f.sluice, sid);
    await transport.terminateSession();
    await waitFor(() => !f.upstream.sessions.has(upstreamId), 3000, 'upstream session removal');
    const res = await fetch(`${f.sluice.base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
    });
    assert.equal(res.status, 404);
    await client.close();
  });

  it('resumes a cut tool-call stream with Last-Event-ID and loses no event', async () => {
    const cutter = cuttingFetch((body) => body.includes('"tools/call"'));
    const client = new Client({ name: 't', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${f.sluice.base}/mcp`), {
      fetch: cutter.fetch,
      reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 },
    });
    await client.connect(transport);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'slow_count', arguments: { steps: 6, intervalMs: 150 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
      timeout: 15_000,
    });
    assert.ok(cutter.wasCut(), 'the stream was cut');
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted to 6' }]);
    assert.deepEqual(progress, [1, 2, 3, 4, 5, 6], 'every progress event exactly once');
    assert.equal(cutter.resumedWith.length, 1, 'the client resumed once, with GET and Last-Event-ID through Sluice');
    await client.close();
  });
});
