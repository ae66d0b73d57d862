// Broker routes behave exactly like the servers behind them (issue 32, items 2-6): each cell runs
// the same operation with the same real peer directly and through Sluice and compares what the
// client sees. server-filesystem for roots, server-everything for progress, an SDK v1 server and
// a 2026-07-28-only SDK v2 server for logging and era-only fields, and a server slow to start.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { EVERYTHING_ENTRY, startEverything } from '../fixtures/server-everything.ts';
import { startStatefulServer, type StatefulServer } from '../fixtures/stateful-modern-server.ts';
import { sleep, startTestGateway, waitFor, type TestGateway } from '../helpers.ts';

const require = createRequire(import.meta.url);
const FS_ENTRY = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const SLOW_START = new URL('../fixtures/slow-start.ts', import.meta.url).pathname;
const LEVEL = 'io.modelcontextprotocol/logLevel';

const text = (r: unknown): string => ((r as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

type Era = 'legacy' | 'modern';

async function httpClient(url: string, era: Era, opts: { roots?: string[] } = {}): Promise<Client> {
  const c = new Client(
    { name: 'exactness', version: '1' },
    {
      capabilities: opts.roots ? { roots: { listChanged: true } } : {},
      ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
    },
  );
  if (opts.roots) c.setRequestHandler('roots/list', async () => ({ roots: (opts.roots ?? []).map((d) => ({ uri: `file://${d}`, name: 'root' })) }));
  await c.connect(new StreamableHTTPClientTransport(new URL(url)), ...((era === 'legacy' ? [{ prior: { kind: 'legacy' } }] : []) as never[]));
  return c;
}

async function stdioClient(command: string, args: string[], opts: { roots?: string[] } = {}): Promise<Client> {
  const c = new Client({ name: 'exactness', version: '1' }, { capabilities: opts.roots ? { roots: { listChanged: true } } : {} });
  if (opts.roots) c.setRequestHandler('roots/list', async () => ({ roots: (opts.roots ?? []).map((d) => ({ uri: `file://${d}`, name: 'root' })) }));
  await c.connect(new StdioClientTransport({ command, args, stderr: 'ignore' }));
  return c;
}

/** Progress notifications a client hears during server-everything's long-running operation (5 steps), over `rounds` calls. */
async function progressHeard(c: Client, tool: string, rounds: number): Promise<number[]> {
  const heard: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let n = 0;
    await c.callTool({ name: tool, arguments: { duration: 0.05, steps: 5 } }, { onprogress: () => void n++ });
    heard.push(n);
  }
  return heard;
}

/** Log lines a 2025 SDK v1 client hears during one call of `tool` (after setLevel(level), when given). */
async function logsHeardV1(url: string, tool: string, level?: 'error'): Promise<string[]> {
  const c = new ClientV1({ name: 'logs', version: '1' });
  const heard: string[] = [];
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.push(String(n.params.data)));
  await c.connect(new TransportV1(new URL(url)));
  if (level) await c.setLoggingLevel(level);
  await c.callTool({ name: tool, arguments: {} });
  await sleep(100);
  await c.close();
  return heard;
}

/** Log lines a 2026-07-28 client hears during one call, asking for `level` in its envelope (or nothing). */
async function logsHeardModern(url: string, tool: string, level?: string): Promise<string[]> {
  const c = await httpClient(url, 'modern');
  const heard: string[] = [];
  c.setNotificationHandler('notifications/message', (n) => void heard.push(String(n.params.data)));
  await c.callTool({ name: tool, arguments: {}, ...(level ? { _meta: { [LEVEL]: level } } : {}) });
  await sleep(100);
  await c.close();
  return heard;
}

/** The SDK v1 server behind the 2026-07-28 bridge: a `chatty` tool logging info, warning, error as a 2025 server does. */
function startChattyV1(): Promise<UpstreamKit> {
  return startUpstreamKit({
    name: 'chatty-v1',
    eras: 'legacy',
    registerV2: () => undefined,
    registerV1: (s) => {
      s.server.registerCapabilities({ logging: {} });
      s.registerTool('chatty', { inputSchema: {} }, async (_a, extra) => {
        for (const [level, data] of [['info', 'one'], ['warning', 'two'], ['error', 'three']] as const)
          await s.server.sendLoggingMessage({ level, data }, extra.sessionId);
        return { content: [{ type: 'text', text: 'chatted' }] };
      });
    },
  });
}

describe('broker routes match the direct run (issue 32)', () => {
  let dirA: string;
  let dirB: string;
  let modern: StatefulServer;
  let chatty: UpstreamKit;
  let everything: { url: string; child: ChildProcess };
  let sluice: TestGateway;

  before(async () => {
    dirA = realpathSync(mkdtempSync(join(tmpdir(), 'sluice-exact-a-')));
    dirB = realpathSync(mkdtempSync(join(tmpdir(), 'sluice-exact-b-')));
    [modern, chatty, everything] = await Promise.all([startStatefulServer('modern-only'), startChattyV1(), startEverything()]);
    const stdio = (args: string[]) => ({ stdio: { command: process.execPath, args } });
    sluice = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      federation: { listTimeout: '600ms', retryAfter: '200ms' },
      routes: [
        { path: '/fs', upstream: stdio([FS_ENTRY, dirA]) },
        { path: '/every', upstream: stdio([EVERYTHING_ENTRY, 'stdio']) },
        { path: '/fed', servers: { every: { upstream: stdio([EVERYTHING_ENTRY, 'stdio']) }, modern: { upstream: modern.url } } },
        { path: '/late', servers: { quick: { upstream: everything.url }, late: { upstream: stdio([SLOW_START, '1500', EVERYTHING_ENTRY, 'stdio']) } } },
        { path: '/to-legacy', upstream: chatty.url, bridge: 'auto' },
        { path: '/to-modern', upstream: modern.url, bridge: 'auto' },
      ] as never,
    });
  });
  after(async () => {
    await sluice?.close();
    await Promise.all([modern?.close(), chatty?.close()]);
    everything?.child.kill('SIGTERM');
    for (const d of [dirA, dirB]) rmSync(d, { recursive: true, force: true });
  });

  it('roots: server-filesystem asks roots/list before the GET stream opens; the client answers and its roots apply, as directly (item 2)', async () => {
    const allowed = async (c: Client): Promise<string> => {
      let seen = '';
      for (let i = 0; i < 50 && !seen.includes(dirB); i++) {
        seen = text(await c.callTool({ name: 'list_allowed_directories', arguments: {} }));
        if (!seen.includes(dirB)) await sleep(100);
      }
      return seen;
    };
    const direct = await stdioClient(process.execPath, [FS_ENTRY, dirA], { roots: [dirB] });
    const directSeen = await allowed(direct);
    await direct.close();
    const through = await httpClient(`${sluice.base}/fs`, 'legacy', { roots: [dirB] });
    const throughSeen = await allowed(through);
    await through.close();
    assert.ok(directSeen.includes(dirB) && !directSeen.includes(dirA), directSeen);
    assert.equal(throughSeen, directSeen);
  });

  it('progress: every notification before the result reaches the client on stdio and federated stdio routes, either era (item 4)', async () => {
    const rounds = 6;
    // The direct run is server-everything served remotely (its own Streamable HTTP): a client on
    // the SDKs' own stdio transport loses the last progress itself (v1 and v2 alike: the SDK runs a
    // notification's handler a microtask after a response that arrived in the same read).
    const direct = await httpClient(everything.url, 'legacy');
    const expected = await progressHeard(direct, 'trigger-long-running-operation', rounds);
    await direct.close();
    assert.deepEqual(expected, Array(rounds).fill(5));
    for (const [path, tool, era] of [
      ['/every', 'trigger-long-running-operation', 'modern'],
      ['/fed', 'every__trigger-long-running-operation', 'legacy'],
      ['/fed', 'every__trigger-long-running-operation', 'modern'],
    ] as const) {
      const c = await httpClient(`${sluice.base}${path}`, era);
      assert.deepEqual(await progressHeard(c, tool, rounds), expected, `${path} ${era}`);
      await c.close();
    }
  });

  it('logging: a 2025 client hears what a 2025 server sends (all by default, its setLevel after), through the bridge and federation to a 2026-07-28 server (items 3, 5)', async () => {
    const byDefault = await logsHeardV1(chatty.url, 'chatty');
    const afterSetLevel = await logsHeardV1(chatty.url, 'chatty', 'error');
    assert.deepEqual(byDefault, ['one', 'two', 'three']);
    assert.deepEqual(afterSetLevel, ['three']);
    assert.deepEqual(await logsHeardV1(`${sluice.base}/to-modern`, 'chatty'), byDefault, 'bridge, no setLevel');
    assert.deepEqual(await logsHeardV1(`${sluice.base}/to-modern`, 'chatty', 'error'), afterSetLevel, 'bridge, setLevel');
    assert.deepEqual(await logsHeardV1(`${sluice.base}/fed`, 'modern__chatty'), byDefault, 'federated, no setLevel');
    assert.deepEqual(await logsHeardV1(`${sluice.base}/fed`, 'modern__chatty', 'error'), afterSetLevel, 'federated, setLevel');
    // setLevel never marks the 2026-07-28 member unavailable.
    assert.ok(!sluice.logs.some((l) => l['server'] === 'modern' && String(l['msg']).includes('unavailable')));
  });

  it('logging: a 2026-07-28 client hears only what its request asks for, from a 2025 server as from a 2026-07-28 one (item 5)', async () => {
    const unasked = await logsHeardModern(modern.url, 'chatty');
    const warnings = await logsHeardModern(modern.url, 'chatty', 'warning');
    assert.deepEqual(unasked, []);
    assert.deepEqual(warnings, ['two', 'three']);
    assert.deepEqual(await logsHeardModern(`${sluice.base}/to-legacy`, 'chatty'), unasked);
    assert.deepEqual(await logsHeardModern(`${sluice.base}/to-legacy`, 'chatty', 'warning'), warnings);
  });

  it('a 2025 client never sees what only a 2026-07-28 result has (resultType, ttlMs, cacheScope, the serverInfo stamp) (item 5)', async () => {
    for (const path of ['/to-modern', '/fed']) {
      const c = new ClientV1({ name: 'fields', version: '1' });
      await c.connect(new TransportV1(new URL(`${sluice.base}${path}`)));
      const results = [await c.listTools(), await c.listResources(), await c.readResource({ uri: path === '/fed' ? 'modern+modern://note' : 'modern://note' })];
      for (const r of results) {
        const raw = r as Record<string, unknown>;
        for (const k of ['resultType', 'ttlMs', 'cacheScope']) assert.ok(!(k in raw), `${path}: ${k} in ${JSON.stringify(raw).slice(0, 200)}`);
        assert.ok(!JSON.stringify(raw['_meta'] ?? {}).includes('serverInfo'), `${path}: serverInfo stamp`);
      }
      await c.close();
    }
  });

  it('a server slow to start costs a 2025 client one wait, and its tools come with one list_changed (item 6)', async () => {
    const c = await httpClient(`${sluice.base}/late`, 'legacy');
    let changed = 0;
    c.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    const timeouts = (): number => sluice.logs.filter((l) => String(l['msg']).includes('federation.listTimeout')).length;
    const first = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(first.includes('quick__echo'), first.join(' '));
    assert.equal(timeouts(), 0, 'the first list did not wait for the server again');
    await waitFor(() => changed > 0, 10_000, 'list_changed once the slow server answered');
    await sleep(800);
    assert.equal(changed, 1, 'list_changed told once');
    const second = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(second.includes('late__echo'), second.join(' '));
    await c.close();
  });
});
