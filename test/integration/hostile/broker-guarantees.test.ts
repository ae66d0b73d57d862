// The broker keeps the relay's guarantees (issue 31), tried as a hostile client and a hostile
// server would: anonymous callers side by side, children that stop reading stdin, ignore SIGTERM
// or are slow to stop, silent calls. Real peers: the official SDK v2 client (2026-07-28) and v1
// client (2025), a stdio server on the SDK v1 (test/fixtures/hostile-stdio-server.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { childrenOf } from '../../fixtures/process-table.ts';
import {
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
async function rawSession(base: string): Promise<Record<string, string>> {
  const r = await send(`${base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
  assert.equal(r.status, 200, r.body.toString());
  const sid = r.headers['mcp-session-id'] as string;
  const headers = { ...JSON_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await send(`${base}/mcp`, { method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
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
