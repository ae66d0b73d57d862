// An upstream that comes back is used at once (issue 18.4). When no replica takes new work (all
// marked down by health checks, or ejected), Sluice still tries the ones that are not removed or
// draining: a refused connect answers 502 at once, and the first request after the upstream
// listens again succeeds, instead of a 503 until the next health check passes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort, JSON_HEADERS, rpc, RPC_OK, send, startFakeUpstream, startTestGateway, waitFor, type FakeUpstream, type TestGateway } from '../helpers.ts';

const upstreamAt = (port: number): Promise<FakeUpstream> => startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK), port);
const replicaOf = (gw: TestGateway) => gw.gw.ctx.routes[0]!.pool.replicas[0]!;
const call = (gw: TestGateway) => send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2025-11-25' }, body: rpc('tools/list') });

describe('recovery when an upstream comes back', () => {
  it('a replica away for 30 s (marked down, ejected): 502 at once throughout, 200 on the first request after it is back', async () => {
    const port = await freePort();
    let up = await upstreamAt(port);
    // Checks every 4 s: after the upstream returns, the replica stays marked down until the next one.
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${port}/mcp`, healthCheck: { interval: '4s', unhealthyThreshold: 1 } }] });
    try {
      assert.equal((await call(gw)).status, 200);
      await up.close();
      await waitFor(() => !replicaOf(gw).healthy, 9000, 'the health check to mark the replica down');
      const t0 = performance.now();
      const away = await call(gw);
      assert.equal(away.status, 502, 'a refused connect, said at once (not 503 until the next check)');
      assert.ok(performance.now() - t0 < 1000);
      // Away for 30 s in all, asked once a second: health checks and passive ejection both count it out.
      const slow: number[] = [];
      for (const end = t0 + 30_000; performance.now() < end; ) {
        const t = performance.now();
        const r = await call(gw);
        assert.equal(r.status, 502);
        if (performance.now() - t > 1000) slow.push(performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      assert.deepEqual(slow, [], 'every answer while it was away came at once');
      up = await upstreamAt(port);
      assert.equal(replicaOf(gw).healthy, false, 'still marked down: no check has seen it back yet');
      const back = await call(gw);
      assert.equal(back.status, 200, 'the first request after it listens succeeds');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('Sluice started before its upstream: 502 until it listens, then the first request succeeds', async () => {
    const port = await freePort();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${port}/mcp`, healthCheck: { interval: '10s', unhealthyThreshold: 1 } }] });
    let up: FakeUpstream | undefined;
    try {
      await waitFor(() => !replicaOf(gw).healthy, 5000, 'the first health check to fail');
      assert.equal((await call(gw)).status, 502);
      up = await upstreamAt(port);
      assert.equal((await call(gw)).status, 200);
    } finally {
      await gw.close();
      await up?.close();
    }
  });
});
