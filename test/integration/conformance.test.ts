// The official conformance suite, directly and through Sluice, against two upstreams:
// the project's reference upstream (official SDKs) and @modelcontextprotocol/server-everything.
// Every check that passes directly must pass through Sluice.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { startReferenceUpstream } from '../fixtures/reference-upstream.ts';
import { passCount, regressions, runConformance } from '../conformance-harness.ts';
import { startTestGateway, type TestGateway } from '../helpers.ts';
import { EVERYTHING_ENTRY, startEverything } from '../fixtures/server-everything.ts';

for (const requirements of ['2025-11-25', '2026-07-28']) {
  describe(`conformance --requirements ${requirements}: reference upstream`, () => {
    let upstream: UpstreamKit;
    let sluice: TestGateway;
    before(async () => {
      upstream = await startReferenceUpstream();
      sluice = await startTestGateway({ routes: [{ path: '/mcp', upstream: upstream.url }] });
    });
    after(async () => {
      await sluice.close();
      await upstream.close();
    });
    it('every check that passes directly passes through Sluice', async (t) => {
      const direct = await runConformance(upstream.url, requirements);
      const via = await runConformance(`${sluice.base}/mcp`, requirements);
      t.diagnostic(`direct ${passCount(direct.checks)}/${direct.checks.size} checks pass, through Sluice ${passCount(via.checks)}/${via.checks.size}`);
      assert.ok(direct.checks.size > 10, `the suite ran: ${direct.output.slice(-500)}`);
      assert.deepEqual(regressions(direct.checks, via.checks), []);
    });
  });

  describe(`conformance --requirements ${requirements}: server-everything`, () => {
    let everything: { url: string; child: ChildProcess };
    let sluice: TestGateway;
    before(async () => {
      everything = await startEverything();
      sluice = await startTestGateway({ routes: [{ path: '/mcp', upstream: everything.url }] });
    });
    after(async () => {
      await sluice.close();
      everything.child.kill('SIGTERM');
    });
    it('every check that passes directly passes through Sluice', async (t) => {
      const direct = await runConformance(everything.url, requirements);
      const via = await runConformance(`${sluice.base}/mcp`, requirements);
      t.diagnostic(`direct ${passCount(direct.checks)}/${direct.checks.size} checks pass, through Sluice ${passCount(via.checks)}/${via.checks.size}`);
      assert.ok(direct.checks.size > 10, `the suite ran: ${direct.output.slice(-500)}`);
      assert.deepEqual(regressions(direct.checks, via.checks), []);
    });
  });
}

// 2026-07-28 servers keep requestState, tasks and subscriptions per process: behind a route of two
// independent reference upstreams (Sluice seals and fans in, issue 18), every check that passes
// against one of them directly still passes.
describe('conformance --requirements 2026-07-28: two reference upstream replicas behind one route', () => {
  let upstreams: UpstreamKit[];
  let sluice: TestGateway;
  before(async () => {
    upstreams = [await startReferenceUpstream(), await startReferenceUpstream()];
    sluice = await startTestGateway({
      routes: [{ path: '/mcp', upstream: upstreams.map((u, i) => ({ url: u.url, id: `ref${i}` })), balance: 'round-robin' }],
    });
  });
  after(async () => {
    await sluice.close();
    for (const u of upstreams) await u.close();
  });
  it('every check that passes against one replica directly passes through Sluice', async (t) => {
    const direct = await runConformance(upstreams[0]!.url, '2026-07-28');
    const via = await runConformance(`${sluice.base}/mcp`, '2026-07-28');
    t.diagnostic(`direct ${passCount(direct.checks)}/${direct.checks.size} checks pass, through Sluice ${passCount(via.checks)}/${via.checks.size}`);
    assert.ok(direct.checks.size > 10, `the suite ran: ${direct.output.slice(-500)}`);
    assert.deepEqual(regressions(direct.checks, via.checks), []);
  });
});

// A broker route (issue 19): server-everything run by Sluice over stdio, against server-everything
// served by its own Streamable HTTP transport. Every check that passes there passes here.
describe('conformance --requirements 2025-11-25: server-everything over stdio, through a stdio route', () => {
  let everything: { url: string; child: ChildProcess };
  let sluice: TestGateway;
  before(async () => {
    everything = await startEverything();
    sluice = await startTestGateway({ routes: [{ path: '/mcp', upstream: { stdio: { command: process.execPath, args: [EVERYTHING_ENTRY, 'stdio'] } } as never }] });
  });
  after(async () => {
    await sluice.close();
    everything.child.kill('SIGTERM');
  });
  it('every check that passes against its own HTTP transport passes through the stdio route', async (t) => {
    const direct = await runConformance(everything.url, '2025-11-25');
    const via = await runConformance(`${sluice.base}/mcp`, '2025-11-25');
    t.diagnostic(`own HTTP ${passCount(direct.checks)}/${direct.checks.size} checks pass, stdio route ${passCount(via.checks)}/${via.checks.size}`);
    assert.ok(direct.checks.size > 10, `the suite ran: ${direct.output.slice(-500)}`);
    assert.deepEqual(regressions(direct.checks, via.checks), []);
  });
});

// Protocol bridging (issue 20): one route with `bridge: auto` in front of an upstream of the other
// era. The same conformance surface served by a 2025-only and by a 2026-07-28-only upstream of the
// official SDKs lets the comparison be check by check against a native server of the client's era.
describe('conformance through a bridge: clients of one era, upstreams of the other', () => {
  let legacyOnly: UpstreamKit;
  let modernOnly: UpstreamKit;
  let everything: { url: string; child: ChildProcess };
  let sluice: TestGateway;
  /** The native 2026-07-28 SDK server's results, the baseline of both 2026-07-28 comparisons. */
  let native: Awaited<ReturnType<typeof runConformance>>;
  before(async () => {
    legacyOnly = await startReferenceUpstream('legacy');
    modernOnly = await startReferenceUpstream('modern');
    everything = await startEverything();
    sluice = await startTestGateway({
      routes: [
        { path: '/old', upstream: legacyOnly.url, bridge: 'auto' },
        { path: '/new', upstream: modernOnly.url, bridge: 'auto' },
        { path: '/every', upstream: everything.url, bridge: 'auto' },
      ],
    });
    native = await runConformance(modernOnly.url, '2026-07-28');
  });
  after(async () => {
    await sluice.close();
    await legacyOnly.close();
    await modernOnly.close();
    everything.child.kill('SIGTERM');
  });

  it('--requirements 2026-07-28 against a 2025-only upstream passes every check a native 2026-07-28 SDK server passes', async (t) => {
    const bridged = await runConformance(`${sluice.base}/old`, '2026-07-28');
    t.diagnostic(`native 2026-07-28 ${passCount(native.checks)}/${native.checks.size}, 2025-only bridged ${passCount(bridged.checks)}/${bridged.checks.size}`);
    assert.ok(native.checks.size > 10, `the suite ran: ${native.output.slice(-500)}`);
    assert.deepEqual(regressions(native.checks, bridged.checks), []);
  });

  it('--requirements 2026-07-28 against server-everything: what differs from the native server is what server-everything lacks', async (t) => {
    const bridged = await runConformance(`${sluice.base}/every`, '2026-07-28');
    const ownEra = await runConformance(everything.url, '2025-11-25');
    t.diagnostic(`native ${passCount(native.checks)}/${native.checks.size}, server-everything bridged ${passCount(bridged.checks)}/${bridged.checks.size}`);
    // Checks of the suite's own fixture tools, prompts and resources: server-everything fails the
    // same check in its own era too. Two 2026-only checks send inputResponses to a tool it does not
    // have, and it answers an unknown tool with an isError result, not a JSON-RPC error.
    const explained = (id: string): boolean =>
      (ownEra.checks.has(id) && ownEra.checks.get(id) !== 'SUCCESS') || id.startsWith('input-required-result-validate-input:');
    const unexplained = regressions(native.checks, bridged.checks).filter((r) => !explained(r.slice(0, r.indexOf(': direct'))));
    assert.deepEqual(unexplained, []);
  });

  it('--requirements 2025-11-25 against a 2026-07-28-only SDK v2 server passes what server-everything and the 2025 SDK server pass directly', async (t) => {
    const bridged = await runConformance(`${sluice.base}/new`, '2025-11-25');
    const everythingDirect = await runConformance(everything.url, '2025-11-25');
    const legacyDirect = await runConformance(legacyOnly.url, '2025-11-25');
    t.diagnostic(
      `bridged ${passCount(bridged.checks)}/${bridged.checks.size}; server-everything direct ${passCount(everythingDirect.checks)}/${everythingDirect.checks.size}; 2025 SDK server direct ${passCount(legacyDirect.checks)}/${legacyDirect.checks.size}`,
    );
    assert.deepEqual(regressions(everythingDirect.checks, bridged.checks), []);
    assert.deepEqual(regressions(legacyDirect.checks, bridged.checks), []);
  });
});

// Federation (issue 21): a federated route of exactly one server, server-everything, keeping its
// names (prefix ''), against server-everything direct: every check that passes there passes here.
describe('conformance --requirements 2025-11-25: a federation of one server-everything', () => {
  let everything: { url: string; child: ChildProcess };
  let sluice: TestGateway;
  before(async () => {
    everything = await startEverything();
    sluice = await startTestGateway({ routes: [{ path: '/fed', servers: { every: { upstream: everything.url, prefix: '' } } }] as never });
  });
  after(async () => {
    await sluice.close();
    everything.child.kill('SIGTERM');
  });
  it('every check that passes against server-everything directly passes through the federation', async (t) => {
    const direct = await runConformance(everything.url, '2025-11-25');
    const via = await runConformance(`${sluice.base}/fed`, '2025-11-25');
    t.diagnostic(`direct ${passCount(direct.checks)}/${direct.checks.size} checks pass, federated ${passCount(via.checks)}/${via.checks.size}`);
    assert.ok(direct.checks.size > 10, `the suite ran: ${direct.output.slice(-500)}`);
    assert.deepEqual(regressions(direct.checks, via.checks), []);
  });
});
