// The broker keeps the relay's guarantees (issue 31), tried as a hostile client and a hostile
// server would: anonymous callers side by side, children that stop reading stdin, ignore SIGTERM
// or are slow to stop, silent calls. Real peers: the official SDK v2 client (2026-07-28) and v1
// client (2025), a stdio server on the SDK v1 (test/fixtures/hostile-stdio-server.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startUpstreamKit, type UpstreamKit } from '../../../src/demo/upstream-kit.ts';
import { registerConformanceV1, registerConformanceV2 } from '../../fixtures/conformance-surface.ts';
import { alive, childrenOf } from '../../fixtures/process-table.ts';
import {
  accessLines,
  freePort,
  JSON_HEADERS,
  rpc,
  send,
  sleep,
  spawnSluice,
  startTestGateway,
  waitFor,
  type SluiceProcess,
  type TestGateway,
} from '../../helpers.ts';

const HOSTILE = new URL('../../fixtures/hostile-stdio-server.ts', import.meta.url).pathname;
const hostile = (extra: string[] = [], more: Record<string, unknown> = {}) =>
  ({ stdio: { command: process.execPath, args: [HOSTILE, ...extra], ...more } }) as never;

const text = (r: unknown): string => (r as { content: { text?: string }[] }).content[0]?.text ?? '';

async function modernClient(url: string): Promise<Client> {
  const client = new Client(
    { name: 'anon-modern', version: '1' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'ada' } }));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

async function legacyClient(url: string): Promise<ClientV1> {
  const client = new ClientV1({ name: 'legacy', version: '1' }, { capabilities: {} });
  await client.connect(new TransportV1(new URL(url)));
  return client;
}

describe('broker: anonymous callers never share upstream state', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: hostile() }] });
  });
  after(async () => {
    await gw.close();
    assert.deepEqual(childrenOf(process.pid), [], 'no child left after shutdown');
  });

  it('two anonymous 2026-07-28 clients on a stdio route: B never reads what A stored', async () => {
    const a = await modernClient(`${gw.base}/mcp`);
    const b = await modernClient(`${gw.base}/mcp`);
    assert.equal(text(await a.callTool({ name: 'remember', arguments: { value: 'secret-of-a' } })), 'stored');
    assert.notEqual(text(await b.callTool({ name: 'recall', arguments: {} })), 'secret-of-a');
    // Their calls are served by different processes, never one shared.
    const [pa, pb] = await Promise.all([
      a.callTool({ name: 'pid', arguments: {} }),
      b.callTool({ name: 'pid', arguments: {} }),
    ]);
    assert.notEqual(text(pa), text(pb));
    // A's elicitation round trip still completes (its parked round is owned by its requestState).
    assert.equal(text(await a.callTool({ name: 'ask', arguments: {} })), 'answered {"name":"ada"}');
    await Promise.all([a.close(), b.close()]);
  });

  it("an anonymous 2025 session is its token's alone; another anonymous caller's recall is its own", async () => {
    const a = await legacyClient(`${gw.base}/mcp`);
    const b = await legacyClient(`${gw.base}/mcp`);
    await a.callTool({ name: 'remember', arguments: { value: 'kept-by-a' } });
    assert.equal(text(await a.callTool({ name: 'recall', arguments: {} })), 'kept-by-a');
    assert.equal(text(await b.callTool({ name: 'recall', arguments: {} })), '(nothing)');
    await Promise.all([a.close(), b.close()]);
  });
});

const INIT = rpc('initialize', {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'churn', version: '1' },
});

describe('broker: maxProcesses counts every live child of the route', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      routes: [{ path: '/mcp', upstream: hostile(['--slow-term', '1200'], { maxProcesses: 5, killGrace: '3s' }) }],
    });
  });
  after(async () => {
    await gw.close();
    assert.deepEqual(childrenOf(process.pid), [], 'no child left after shutdown');
  });

  it('initialize+DELETE churn with children slow to stop: real processes never exceed 5', async () => {
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, childrenOf(process.pid).length);
        await sleep(15);
      }
    })();
    let opened = 0;
    let refused = 0;
    const deadline = Date.now() + 8_000;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        for (let i = 0; i < 6 && Date.now() < deadline; i++) {
          const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
          const sid = r.headers['mcp-session-id'];
          if (r.status !== 200 || typeof sid !== 'string') {
            assert.equal(r.status, 503, r.body.toString());
            refused++;
            await sleep(100);
            continue;
          }
          opened++;
          await send(`${gw.base}/mcp`, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
        }
      }),
    );
    sampling = false;
    await sampler;
    assert.ok(opened >= 5, `some sessions opened (${opened})`);
    assert.ok(refused > 0, 'the bound refused some while children were stopping');
    assert.ok(most <= 5, `at most 5 live processes at any instant (saw ${most})`);
  });

  it('a bridged 2026-07-28 caller and 2025 sessions draw on the same count', async () => {
    await waitFor(() => childrenOf(process.pid).length === 0, 10_000, 'the churn children to stop');
    const held = await Promise.all(Array.from({ length: 5 }, () => legacyClient(`${gw.base}/mcp`)));
    assert.equal(childrenOf(process.pid).length, 5);
    // Every slot is a 2025 session's: the bridge may not start a sixth process for a 2026-07-28 caller.
    const refused = await modernClient(`${gw.base}/mcp`)
      .then((c) => c.callTool({ name: 'pid', arguments: {} }).finally(() => c.close()))
      .then(
        (r) => `answered ${text(r)}`,
        (e: Error) => e.message,
      );
    assert.match(refused, /maxProcesses|HTTP 503/);
    assert.equal(childrenOf(process.pid).length, 5);
    await Promise.all(held.map((c) => c.close()));
  });
});

/** A 2025 session opened by hand: its token and the headers later requests carry. */
async function rawSession(base: string, path = '/mcp'): Promise<Record<string, string>> {
  const r = await send(`${base}${path}`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
  assert.equal(r.status, 200, r.body.toString());
  const sid = r.headers['mcp-session-id'] as string;
  const headers = { ...JSON_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await send(`${base}${path}`, { method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  return headers;
}

/** A process's resident memory in MiB, from /proc. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

describe('broker: a child that stops reading stdin', () => {
  let sluice: SluiceProcess;
  let base: string;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-deaf-'));
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(
      cfg,
      `listen: [{ host: 127.0.0.1, port: 0 }]\nroutes:\n  - path: /mcp\n    upstream:\n      stdio: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(HOSTILE)}], stdinWait: 100ms }\n`,
    );
    sluice = await spawnSluice(['serve', '--config', cfg], '/mcp -> stdio');
    base = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(sluice.stderr())![1]!;
  });
  after(async () => {
    assert.equal(await sluice.stop(), 0);
  });

  it("50 notifications of 4 MiB: the POSTs wait, then 503; Sluice's memory stays within 64 MiB of its baseline", async () => {
    const headers = await rawSession(base);
    const deaf = await send(`${base}/mcp`, {
      method: 'POST',
      headers,
      body: rpc('tools/call', { name: 'stop_reading', arguments: {} }, 2),
    });
    assert.equal(deaf.status, 200);
    await sleep(100);
    const body = Buffer.from(
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/pad', params: { pad: 'x'.repeat(4 * 1024 * 1024 - 1024) } }),
    );
    const pid = sluice.child.pid!;
    const statuses: number[] = [];
    let sent = 0;
    let peak = 0;
    const post = (upTo: number): Promise<unknown> =>
      Promise.all(
        Array.from({ length: 3 }, async () => {
          while (sent < upTo) {
            sent++;
            const r = await send(`${base}/mcp`, { method: 'POST', headers, body });
            statuses.push(r.status);
            peak = Math.max(peak, rssMiB(pid));
          }
        }),
      );
    // The baseline is taken once Sluice has handled 4 MiB bodies (V8 keeps ~100 MiB of heap room
    // for such traffic whatever the upstream does); then 100 more must not add what the child
    // does not read (before the fix each one stayed queued: 4 MiB more per message).
    const fresh = rssMiB(pid);
    await post(50);
    const baseline = rssMiB(pid);
    peak = baseline;
    await post(150);
    const busy = await send(`${base}/mcp`, { method: 'POST', headers, body });
    assert.match(busy.body.toString(), /SLUICE_ERR_UPSTREAM_BUSY|not reading its input/);
    await sleep(500);
    const settled = rssMiB(pid);
    console.log(`deaf child: fresh ${fresh.toFixed(0)} MiB, after 50 x 4 MiB ${baseline.toFixed(0)}, peak over 100 more ${peak.toFixed(0)}, settled ${settled.toFixed(0)}; ${statuses.filter((s) => s === 202).length} x 202, ${statuses.filter((s) => s === 503).length} x 503`);
    assert.ok(statuses.includes(503), `some were refused: ${statuses.join(',')}`);
    assert.ok(statuses.every((s) => s === 202 || s === 503), statuses.join(','));
    assert.ok(peak - baseline < 64, `RSS grew ${(peak - baseline).toFixed(1)} MiB (at most 64)`);
  });
});

describe("broker: the relay's admission and deadlines on broker routes", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      limits: { concurrency: 5 },
      timeouts: { request: '1s' },
      routes: [
        { path: '/mcp', upstream: hostile() },
        { path: '/fed', servers: { h: { upstream: hostile() } } } as never,
      ],
    } as never);
  });
  after(() => gw.close());

  for (const path of ['/mcp', '/fed']) {
    it(`limits.concurrency 5 on ${path === '/mcp' ? 'a stdio' : 'a federated'} route: 40 calls at once, 5 served, 35 refused 503`, async () => {
      const headers = await rawSession(gw.base, path);
      const tool = path === '/fed' ? 'h__slow' : 'slow';
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          send(`${gw.base}${path}`, {
            method: 'POST',
            headers,
            body: rpc('tools/call', { name: tool, arguments: { ms: 400 } }, 100 + i),
          }),
        ),
      );
      const ok = answers.filter((a) => a.status === 200).length;
      const refused = answers.filter((a) => a.status === 503);
      assert.equal(ok, 5, answers.map((a) => a.status).join(','));
      assert.equal(refused.length, 35);
      assert.match(refused[0]!.body.toString(), /SLUICE_ERR_OVERLOADED/);
    });
  }

  it('a silent stdio call ends at timeouts.request with 504, and the session goes on', async () => {
    const headers = await rawSession(gw.base);
    const started = Date.now();
    const r = await send(`${gw.base}/mcp`, {
      method: 'POST',
      headers,
      body: rpc('tools/call', { name: 'silent', arguments: {} }, 7),
    });
    const took = Date.now() - started;
    assert.equal(r.status, 504, r.body.toString());
    assert.match(r.body.toString(), /SLUICE_ERR_UPSTREAM_TIMEOUT/);
    assert.ok(took >= 950 && took < 3000, `answered after ${took} ms`);
    const after = await send(`${gw.base}/mcp`, {
      method: 'POST',
      headers,
      body: rpc('tools/call', { name: 'pid', arguments: {} }, 8),
    });
    assert.equal(after.status, 200);
    assert.match(after.body.toString(), /"result"/);
  });
});

describe('broker: shutdown drains broker exchanges', () => {
  it('children deaf to SIGTERM with a long killGrace are killed within shutdown.drain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-deaf-term-'));
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(
      cfg,
      `listen: [{ host: 127.0.0.1, port: 0 }]\nshutdown: { drain: 1s }\nroutes:\n  - path: /mcp\n    upstream:\n      stdio: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(HOSTILE)}, --ignore-term], killGrace: 30s }\n`,
    );
    const sluice = await spawnSluice(['serve', '--config', cfg], '/mcp -> stdio');
    const base = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(sluice.stderr())![1]!;
    await rawSession(base);
    await rawSession(base);
    const children = childrenOf(sluice.child.pid!).map((c) => c.pid);
    assert.equal(children.length, 2);
    const stopped = Date.now();
    assert.equal(await sluice.stop(), 0);
    const took = Date.now() - stopped;
    assert.ok(took < 5000, `Sluice stopped after ${took} ms (drain 1 s; killGrace 30 s not waited for)`);
    assert.deepEqual(children.filter(alive), []);
  });

  it('a slow stdio call in flight at SIGTERM completes within shutdown.drain; Sluice exits 0 and leaves no child', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-drain-'));
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(
      cfg,
      `listen: [{ host: 127.0.0.1, port: 0 }]\nshutdown: { drain: 5s }\nroutes:\n  - path: /mcp\n    upstream:\n      stdio: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(HOSTILE)}] }\n`,
    );
    const sluice = await spawnSluice(['serve', '--config', cfg], '/mcp -> stdio');
    const base = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(sluice.stderr())![1]!;
    const headers = await rawSession(base);
    const children = childrenOf(sluice.child.pid!).map((c) => c.pid);
    assert.equal(children.length, 1);
    const call = send(`${base}/mcp`, {
      method: 'POST',
      headers,
      body: rpc('tools/call', { name: 'slow', arguments: { ms: 1500 } }, 3),
    });
    await sleep(300);
    const stopped = Date.now();
    const code = sluice.stop();
    const answer = await call;
    assert.equal(answer.status, 200);
    assert.match(answer.body.toString(), /slept 1500/);
    assert.equal(await code, 0);
    assert.ok(Date.now() - stopped < 5000, 'within shutdown.drain');
    assert.deepEqual(children.filter(alive), [], 'the child is gone');
  });
});

describe('broker: abandoned input_required rounds', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      routes: [{ path: '/mcp', upstream: hostile([], { maxProcesses: 3 }) }],
      bridging: { inputHold: '300ms', inputTimeout: '60s' },
    } as never);
  });
  after(() => gw.close());

  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  };
  const call = (name: string, id: number) =>
    send(`${gw.base}/mcp`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name },
      body: rpc('tools/call', { name, arguments: {}, _meta: envelope }, id),
    });

  it('rounds their clients never retried hold every process only for bridging.inputHold; then a new caller is served', async () => {
    const parked = await Promise.all([1, 2, 3].map((i) => call('ask', i)));
    for (const p of parked) assert.match(p.body.toString(), /input_required/);
    await sleep(400);
    const started = Date.now();
    const fresh = await call('pid', 9);
    assert.equal(fresh.status, 200, fresh.body.toString());
    assert.match(fresh.body.toString(), /"result"/);
    assert.doesNotMatch(fresh.body.toString(), /in use|maxProcesses/);
    assert.ok(Date.now() - started < 5000);
    // Their clients come back without answers: the round whose session was taken is refused in the
    // spec's words; the others are asked again at once.
    const late = await Promise.all(
      parked.map((p, i) => {
        const state = (JSON.parse(p.body.toString()) as { result: { requestState: string } }).result.requestState;
        return send(`${gw.base}/mcp`, {
          method: 'POST',
          headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'ask' },
          body: rpc('tools/call', { name: 'ask', arguments: {}, _meta: envelope, requestState: state, inputResponses: {} }, 20 + i),
        });
      }),
    );
    const bodies = late.map((r) => r.body.toString());
    assert.equal(bodies.filter((b) => /-32602/.test(b)).length, 1, bodies.join('\n'));
    assert.equal(bodies.filter((b) => /input_required/.test(b)).length, 2, bodies.join('\n'));
  });
});

/** Alive and not a zombie (a killed orphan waits for PID 1 to reap it). */
function running(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('broker: processes that cannot escape', () => {
  it("a grandchild that calls setsid dies with its session (DELETE) and with Sluice's shutdown", async () => {
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: hostile([], { killGrace: '500ms' }) }] });
    const grandchildren: number[] = [];
    for (const end of ['delete', 'shutdown']) {
      const headers = await rawSession(gw.base);
      const r = await send(`${gw.base}/mcp`, {
        method: 'POST',
        headers,
        body: rpc('tools/call', { name: 'escape', arguments: {} }, 4),
      });
      const pid = Number(/"text":"(\d+)"/.exec(r.body.toString())?.[1]);
      assert.ok(pid > 0 && running(pid), r.body.toString());
      grandchildren.push(pid);
      if (end === 'delete') {
        await send(`${gw.base}/mcp`, { method: 'DELETE', headers });
        await waitFor(() => !running(pid), 5000, 'the setsid grandchild to die with its session');
      }
    }
    await gw.close();
    // SIGKILLed before Sluice's shutdown resolved; the kernel (and PID 1's reaping) takes a moment.
    await waitFor(() => grandchildren.filter(running).length === 0, 3000, 'no escaped grandchild to outlive Sluice');
  });

  it('SIGHUP in the quick form keeps Sluice and its sessions', async () => {
    const sluice = await spawnSluice(
      ['serve', '--listen', '127.0.0.1:0', '--stdio', '--', process.execPath, HOSTILE, '--api-key', 'topsecret-1234'],
      '/mcp',
    );
    const base = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(sluice.stderr())![1]!;
    // The start banner names the server, never a secret flag's value (issue 35).
    assert.match(sluice.stderr(), /--api-key ••••••/);
    assert.ok(!sluice.stderr().includes('topsecret-1234'));
    const headers = await rawSession(base);
    const [child] = childrenOf(sluice.child.pid!).map((c) => c.pid);
    sluice.child.kill('SIGHUP');
    await sleep(300);
    assert.equal(sluice.child.exitCode, null, 'Sluice still runs');
    assert.ok(child !== undefined && running(child), 'the session child lives');
    const r = await send(`${base}/mcp`, { method: 'POST', headers, body: rpc('tools/call', { name: 'pid', arguments: {} }, 5) });
    assert.equal(r.status, 200);
    assert.equal(await sluice.stop(), 0);
  });
});

describe('broker: workers that die', () => {
  it('kill -9 of a worker leaves no child; all workers killed at once are restarted; SIGTERM leaves none', async () => {
    // A port of its own: workers started again listen anew (port 0 would give them another one).
    const port = await freePort();
    const sluice = await spawnSluice(
      ['serve', '--listen', `127.0.0.1:${port}`, '--workers', '2', '--stdio', '--', process.execPath, HOSTILE],
      '/mcp',
    );
    after(() => sluice.child.exitCode === null && sluice.child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}`;
    const primary = sluice.child.pid!;
    const workers = (): number[] => childrenOf(primary).map((c) => c.pid);
    await waitFor(() => workers().length === 2, 10_000, 'two workers');
    for (let i = 0; i < 6; i++) await rawSession(base);
    const byWorker = new Map(workers().map((w) => [w, childrenOf(w).map((c) => c.pid)]));
    const [victim, holding] = [...byWorker].sort((a, b) => b[1].length - a[1].length)[0]!;
    assert.ok(holding.length > 0, 'the worker killed holds sessions');
    process.kill(victim, 'SIGKILL');
    await waitFor(() => holding.every((p) => !running(p)), 5000, "the killed worker's children to be stopped");
    await waitFor(() => workers().length === 2, 10_000, 'the worker replaced');
    // Every worker at once: the primary restarts them rather than exit 0 with nothing running.
    for (const w of workers()) process.kill(w, 'SIGKILL');
    await sleep(300);
    assert.equal(sluice.child.exitCode, null, 'the primary still runs');
    await waitFor(() => workers().length === 2, 10_000, 'both workers restarted');
    let serving = 0;
    for (let i = 0; i < 50 && serving !== 200; i++) {
      serving = (await send(`${base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT }).catch(() => undefined))?.status ?? 0;
      if (serving !== 200) await sleep(200);
    }
    assert.equal(serving, 200, 'serving again');
    const left = [...workers()].flatMap((w) => childrenOf(w).map((c) => c.pid));
    assert.equal(await sluice.stop(), 0);
    assert.deepEqual(left.filter(running), [], 'SIGTERM leaves no child');
  });
});

describe('broker: upstream sessions are ended (DELETE) when Sluice lets them go', () => {
  let upstream: UpstreamKit;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstreamKit({
      name: 'legacy-only',
      registerV1: registerConformanceV1,
      registerV2: registerConformanceV2,
      eras: 'legacy',
    });
    gw = await startTestGateway({
      routes: [
        { path: '/bridge', upstream: upstream.url, bridge: 'auto' },
        { path: '/fed', servers: { one: { upstream: upstream.url } } } as never,
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('anonymous 2026-07-28 callers of a bridged route leave no upstream session', async () => {
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const c = await modernClient(`${gw.base}/bridge`);
        await c.callTool({ name: 'test_simple_text', arguments: {} });
        await c.close();
      }),
    );
    await waitFor(() => upstream.sessions.size === 0, 5000, `the upstream sessions ended (${upstream.sessions.size} left)`);
  });

  it("a federated session's DELETE ends its upstream session; a credentialed caller's pooled session ends with Sluice", async () => {
    const fed = await legacyClient(`${gw.base}/fed`);
    await fed.callTool({ name: 'one__test_simple_text', arguments: {} });
    const pooled = new Client(
      { name: 'pooled', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await pooled.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.base}/bridge`), { requestInit: { headers: { authorization: 'Bearer kept' } } }),
    );
    await pooled.callTool({ name: 'test_simple_text', arguments: {} });
    assert.ok(upstream.sessions.size >= 2, `open upstream sessions: ${upstream.sessions.size}`);
    await (fed.transport as TransportV1).terminateSession();
    await fed.close();
    await waitFor(() => upstream.sessions.size === 1, 5000, 'the federated upstream session ended');
    await pooled.close();
    await gw.close();
    assert.equal(upstream.sessions.size, 0, 'Sluice ended the pooled session as it stopped');
  });
});

describe('broker: a client that stops reading its stream', () => {
  it('is cut at limits.sseClientBuffer / sseClientStall, as on the relay; others go on', async () => {
    const gw = await startTestGateway({
      limits: { sseClientBuffer: '256KiB', sseClientStall: '1s' },
      routes: [{ path: '/mcp', upstream: hostile() }],
    });
    try {
      const headers = await rawSession(gw.base);
      const body = rpc('tools/call', { name: 'flood', arguments: { count: 400, size: 50_000 }, _meta: { progressToken: 't' } }, 9);
      const head = [
        `POST /mcp HTTP/1.1`,
        `Host: 127.0.0.1:${gw.port}`,
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        '',
      ].join('\r\n');
      const socket = connect(gw.port, '127.0.0.1');
      socket.write(head + body);
      // Reads the answer's head, then nothing more.
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.pause();
      await waitFor(() => gw.logs.some((l) => l['msg'] === 'slow SSE client: stream closed'), 10_000, 'the slow client cut');
      await waitFor(() => accessLines(gw.logs).some((l) => l['outcome'] === 'slow-client'), 5000, 'the access line');
      socket.destroy();
      // The session itself goes on for its next request.
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers, body: rpc('tools/call', { name: 'pid', arguments: {} }, 10) });
      assert.equal(r.status, 200);
    } finally {
      await gw.close();
    }
  });
});

describe('broker: the bridge sessions gauge goes down as well as up (issue 35)', () => {
  it('sluice_bridge_sessions counts the pooled upstream sessions that are open now', async () => {
    const upstream = await startUpstreamKit({ name: 'legacy-only', registerV1: registerConformanceV1, registerV2: registerConformanceV2, eras: 'legacy' });
    const gw = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      routes: [{ path: '/bridge', upstream: upstream.url, bridge: 'auto' }],
    });
    const gauge = async (): Promise<number> => {
      const text = (await send(`http://127.0.0.1:${gw.gw.adminAddress!.port}/metrics`)).body.toString();
      return Number(/^sluice_bridge_sessions\{route="\/bridge"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    try {
      const held = new Client({ name: 'held', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      await held.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/bridge`), { requestInit: { headers: { authorization: 'Bearer held' } } }));
      await held.callTool({ name: 'test_simple_text', arguments: {} });
      assert.ok((await gauge()) >= 1);
      const anon = await modernClient(`${gw.base}/bridge`);
      await anon.callTool({ name: 'test_simple_text', arguments: {} });
      await anon.close();
      await held.close();
      // The anonymous caller's session is ended 0.5 s after its request; the credentialed one stays pooled.
      let n = await gauge();
      for (let i = 0; i < 50 && n !== 1; i++) {
        await sleep(100);
        n = await gauge();
      }
      assert.equal(n, 1, 'back down to the one pooled session');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
