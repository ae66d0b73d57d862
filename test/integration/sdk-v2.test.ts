// The official v2 SDK client (2026-07-28, stateless) through Sluice against the v2 upstream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { accessLines, startDemoUpstream, startTestGateway, type TestGateway } from '../helpers.ts';

describe('SDK v2 client through Sluice (stateless 2026-07-28)', () => {
  let upstream: UpstreamKit;
  let sluice: TestGateway;
  before(async () => {
    upstream = await startDemoUpstream();
    sluice = await startTestGateway({ routes: [{ path: '/mcp', upstream: upstream.url }] });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
  });

  it('discovers, lists tools and streams progress with mirrored headers checked on the way', async () => {
    const client = new Client({ name: 't2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${sluice.base}/mcp`)));
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'echo', 'slow_count']);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'slow_count', arguments: { steps: 3, intervalMs: 50 } }, {
      onprogress: (p: { progress: number }) => progress.push(p.progress),
    });
    assert.deepEqual(progress, [1, 2, 3]);
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted to 3' }]);
    const calls = accessLines(sluice.logs).filter((l) => l['rpcMethod'] === 'tools/call');
    assert.ok(calls.length >= 1);
    assert.equal(calls.at(-1)?.['era'], 'stateless');
    assert.equal(calls.at(-1)?.['rpcName'], 'slow_count');
    await client.close();
  });
});
