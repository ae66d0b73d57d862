// Federation (issue 21): three real servers of different kinds behind one route — server-everything
// over Streamable HTTP, an official SDK v1 server with sessions, and server-filesystem run over
// stdio — seen by an official SDK client as one MCP server.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as StreamableHTTPClientTransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { registerDemoV1 } from '../../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { hashApiKey } from '../../src/security/bearer.ts';
import { childrenOf } from '../fixtures/process-table.ts';
import { startEverything } from '../fixtures/server-everything.ts';
import { startStatefulServer, type StatefulServer } from '../fixtures/stateful-modern-server.ts';
import { accessLines, freePort, sleep, startTestGateway, waitFor, type TestGateway } from '../helpers.ts';

const require = createRequire(import.meta.url);
const FS_ENTRY = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const STDIO_FIXTURE = new URL('../fixtures/stdio-server.ts', import.meta.url).pathname;
const ADMIN_TOKEN = 'federation-admin-token-0123456789';

/** The SDK v1 server with sessions: the demo tools, and `grow`, which adds a tool (its list changes). */
function registerV1(s: McpServer): void {
  registerDemoV1(s);
  let grown = 0;
  s.registerTool('grow', { description: 'Adds a tool to this session' }, async () => {
    grown++;
    s.registerTool(`grown_${grown}`, { description: 'A tool grow added' }, async () => ({ content: [{ type: 'text', text: 'grown' }] }));
    return { content: [{ type: 'text', text: `grew ${grown}` }] };
  });
}

function startV1(port = 0): Promise<UpstreamKit> {
  return startUpstreamKit({ name: 'v1-sessions', eras: 'legacy', registerV1, registerV2: () => undefined }, port);
}

async function connect(url: string, opts: { token?: string; sampling?: boolean } = {}): Promise<Client> {
  const client = new Client({ name: 'federation-test', version: '1' }, { capabilities: opts.sampling ? { sampling: {} } : {} });
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }), { prior: { kind: 'legacy' } } as never);
  return client;
}

/** server-filesystem processes this test process runs (through Sluice, in process). */
function fsChildren(): number[] {
  return childrenOf(process.pid)
    .filter((p) => p.state !== 'Z')
    .map((p) => p.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server-filesystem');
      } catch {
        return false;
      }
    });
}

const text = (r: unknown): string => ((r as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

async function metric(sluice: TestGateway, line: RegExp): Promise<number> {
  const admin = sluice.gw.adminAddress;
  const body = await (await fetch(`http://127.0.0.1:${admin?.port}/metrics`)).text();
  const hit = body.split('\n').find((l) => line.test(l));
  return hit ? Number(hit.split(' ').pop()) : 0;
}

describe('federation: three servers of different kinds behind one route', () => {
  let everything: { url: string; child: ChildProcess };
  let v1: UpstreamKit;
  let v1Port: number;
  let dir: string;
  let sluice: TestGateway;
  let client: Client;

  before(async () => {
    everything = await startEverything();
    v1Port = await freePort();
    v1 = await startV1(v1Port);
    dir = mkdtempSync(join(tmpdir(), 'sluice-federation-'));
    writeFileSync(join(dir, 'hello.txt'), 'hello from the filesystem server');
    sluice = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN },
      federation: { listTimeout: '1500ms', retryAfter: '200ms' },
      routes: [
        {
          path: '/team',
          servers: {
            every: { upstream: everything.url },
            v1: { upstream: v1.url, prefix: 'sdk' },
            files: { upstream: { stdio: { command: process.execPath, args: [FS_ENTRY, dir] } } },
          },
        },
      ] as never,
    });
    client = await connect(`${sluice.base}/team`, { sampling: true });
    client.setRequestHandler('sampling/createMessage', async (req) => {
      const asked = JSON.stringify(req.params.messages);
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `sampled: ${asked.length} chars` } } as never;
    });
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await sluice?.close();
    await v1?.close().catch(() => undefined);
    everything?.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists merge with each server prefixed; a call reaches each server in its own names; the access log names the server', async () => {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    for (const name of ['every__echo', 'every__trigger-sampling-request', 'sdk__echo', 'sdk__slow_count', 'files__read_text_file'])
      assert.ok(tools.includes(name), `${name} in ${tools.join(' ')}`);
    assert.ok(tools.every((n) => /^(every|sdk|files)__/.test(n)), 'every name carries its server prefix');
    assert.equal(text(await client.callTool({ name: 'every__echo', arguments: { message: 'one' } })), 'Echo: one');
    assert.equal(text(await client.callTool({ name: 'sdk__echo', arguments: { message: 'two' } })), 'two');
    assert.equal(text(await client.callTool({ name: 'files__read_text_file', arguments: { path: join(dir, 'hello.txt') } })), 'hello from the filesystem server');
    const unknown = await client.callTool({ name: 'nobody__echo', arguments: {} }).catch((e: Error) => e);
    assert.match(String((unknown as Error).message ?? JSON.stringify(unknown)), /Unknown tool: nobody__echo/);
    const calls = accessLines(sluice.logs).filter((l) => l['rpcMethod'] === 'tools/call');
    assert.deepEqual(new Set(calls.map((l) => l['server']).filter(Boolean)), new Set(['every', 'v1', 'files']));
    assert.ok(calls.every((l) => l['kind'] === 'broker'));
  });

  it('a sampling request from server-everything reaches the client and its answer goes back to the tool', async () => {
    const r = await client.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'federated?', maxTokens: 10 } });
    assert.match(JSON.stringify(r), /sampled: \d+ chars/);
  });

  it('progress from two servers interleaves on one client session, each call getting only its own', async () => {
    const seen: Record<string, number[]> = { every: [], sdk: [] };
    const [a, b] = await Promise.all([
      client.callTool({ name: 'every__trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, {
        onprogress: (p) => seen['every']!.push(p.progress),
      }),
      client.callTool({ name: 'sdk__slow_count', arguments: { steps: 4, intervalMs: 150 } }, {
        onprogress: (p) => seen['sdk']!.push(p.progress),
      }),
    ]);
    assert.match(text(a), /Long running operation completed/);
    assert.equal(text(b), 'counted to 4');
    assert.deepEqual(seen['sdk'], [1, 2, 3, 4]);
    assert.equal(seen['every']!.length, 4);
    assert.deepEqual([...seen['every']!].sort((x, y) => x - y), seen['every']);
  });

  it("one server's list_changed reaches the client, and the new tool is listed and callable by its prefixed name", async () => {
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    assert.equal(text(await client.callTool({ name: 'sdk__grow', arguments: {} })), 'grew 1');
    await waitFor(() => changed > 0, 5000, 'tools/list_changed');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('sdk__grown_1'), tools.join(' '));
    assert.equal(text(await client.callTool({ name: 'sdk__grown_1', arguments: {} })), 'grown');
  });

  it('a resource is read and subscribed to by its namespaced URI; updates come back namespaced', async () => {
    const resources = (await client.listResources()).resources;
    const doc = resources.find((r) => r.uri.startsWith('every+demo://resource/static/document/'));
    assert.ok(doc, resources.map((r) => r.uri).join(' '));
    const read = await client.readResource({ uri: doc.uri });
    assert.equal(read.contents[0]?.uri, doc.uri);
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: doc.uri });
    await client.callTool({ name: 'every__toggle-subscriber-updates', arguments: {} });
    await waitFor(() => updates.length > 0, 8000, 'resources/updated');
    assert.equal(updates[0], doc.uri);
    await client.callTool({ name: 'every__toggle-subscriber-updates', arguments: {} });
    const templates = (await client.listResourceTemplates()).resourceTemplates;
    assert.ok(templates.every((t) => t.uriTemplate.startsWith('every+')), templates.map((t) => t.uriTemplate).join(' '));
  });

  it('a 2026-07-28 client gets the same federation: merged list, a call to each server, sampling as input_required, progress', async () => {
    const modern = new Client({ name: 'modern-federation-test', version: '1' }, { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    modern.setRequestHandler('sampling/createMessage', async () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled in a round' } }) as never);
    await modern.connect(new StreamableHTTPClientTransport(new URL(`${sluice.base}/team`)));
    assert.equal(modern.getProtocolEra(), 'modern');
    const tools = (await modern.listTools()).tools.map((t) => t.name);
    for (const name of ['every__echo', 'sdk__echo', 'files__read_text_file']) assert.ok(tools.includes(name), tools.join(' '));
    assert.equal(text(await modern.callTool({ name: 'every__echo', arguments: { message: 'm1' } })), 'Echo: m1');
    assert.equal(text(await modern.callTool({ name: 'sdk__echo', arguments: { message: 'm2' } })), 'm2');
    assert.equal(text(await modern.callTool({ name: 'files__read_text_file', arguments: { path: join(dir, 'hello.txt') } })), 'hello from the filesystem server');
    const sampled = await modern.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'modern?', maxTokens: 10 } });
    assert.match(JSON.stringify(sampled), /sampled in a round/);
    const progress: number[] = [];
    const counted = await modern.callTool({ name: 'sdk__slow_count', arguments: { steps: 3, intervalMs: 50 } }, { onprogress: (p) => progress.push(p.progress) });
    assert.equal(text(counted), 'counted to 3');
    assert.deepEqual(progress, [1, 2, 3]);
    await modern.close();
  });

  it('a task (2025-11-25) runs on its server under a namespaced task id: get, list and cancel find it', async () => {
    const old = new ClientV1({ name: 'task-client', version: '1' });
    await old.connect(new StreamableHTTPClientTransportV1(new URL(`${sluice.base}/team`)));
    const any = z.any();
    const created = (await old.request({ method: 'tools/call', params: { name: 'every__simulate-research-query', arguments: { topic: 'tides' }, task: { ttl: 60_000 } } } as never, any as never)) as { task: { taskId: string } };
    const id = created.task.taskId;
    assert.match(id, /^every__[0-9a-f]+$/);
    const got = (await old.request({ method: 'tasks/get', params: { taskId: id } } as never, any as never)) as { taskId: string; status: string };
    assert.equal(got.taskId, id);
    const listed = (await old.request({ method: 'tasks/list', params: {} } as never, any as never)) as { tasks: { taskId: string }[] };
    assert.ok(listed.tasks.some((t) => t.taskId === id), JSON.stringify(listed));
    await old.request({ method: 'tasks/cancel', params: { taskId: id } } as never, any as never);
    const after = (await old.request({ method: 'tasks/get', params: { taskId: id } } as never, any as never)) as { status: string };
    assert.equal(after.status, 'cancelled');
    const unknown = await old.request({ method: 'tasks/get', params: { taskId: 'nobody__1' } } as never, any as never).then(() => undefined, (e: { code?: number }) => e);
    assert.equal(unknown?.code, -32602);
    await old.close();
  });

  it('the admin API lists each server: kind, era, replicas and the sessions’ links', async () => {
    const res = await fetch(`http://127.0.0.1:${sluice.gw.adminAddress?.port}/admin/federation`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { routes: { route: string; servers: Record<string, unknown>[] }[] };
    const servers = body.routes.find((r) => r.route === '/team')?.servers ?? [];
    assert.deepEqual(servers.map((s) => [s['server'], s['kind'], s['era']]), [
      ['every', 'http', 'legacy'],
      ['v1', 'http', 'legacy'],
      ['files', 'stdio', 'legacy'],
    ]);
    assert.ok(servers.every((s) => (s['links'] as { up: number }).up >= 1), JSON.stringify(servers));
    assert.ok((await metric(sluice, /^sluice_federated_requests_total\{route="\/team",server="v1"\}/)) >= 3);
    const anon = await fetch(`http://127.0.0.1:${sluice.gw.adminAddress?.port}/admin/federation`);
    assert.equal(anon.status, 401);
  });

  it('a server that is killed: lists answer with the other two, a call to it names it, and it comes back with a list_changed', async () => {
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    await v1.close();
    const started = Date.now();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(Date.now() - started < 1500 + 1000, 'answered within the list timeout');
    assert.ok(tools.some((n) => n.startsWith('every__')) && tools.some((n) => n.startsWith('files__')));
    assert.ok(!tools.some((n) => n.startsWith('sdk__')), 'the dead server is left out');
    const down = await client.callTool({ name: 'sdk__echo', arguments: { message: 'x' } }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.match(String(down?.message), /federated server "v1" is unavailable/);
    assert.equal(text(await client.callTool({ name: 'every__echo', arguments: { message: 'still here' } })), 'Echo: still here');
    const before = changed;
    v1 = await startV1(v1Port);
    await waitFor(() => changed > before, 10_000, 'list_changed after the server came back');
    const again = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(again.includes('sdk__echo'), again.join(' '));
    assert.equal(text(await client.callTool({ name: 'sdk__echo', arguments: { message: 'back' } })), 'back');
  });

  it('a server restarted without its sessions (404) is initialized again behind the client: no error', async () => {
    await v1.close();
    v1 = await startV1(v1Port);
    assert.equal(text(await client.callTool({ name: 'sdk__echo', arguments: { message: 'healed' } })), 'healed');
    assert.ok(sluice.logs.some((l) => l['msg'] === 'federated server forgot the session: initializing again'));
  });

  it("a session's stdio server process ends with the session (the process table, not Sluice's counters)", async () => {
    // By PID: children of earlier tests' anonymous 2026-07-28 requests may still be stopping.
    const before = new Set(fsChildren());
    const transport = new StreamableHTTPClientTransport(new URL(`${sluice.base}/team`));
    const extra = new Client({ name: 'short-lived', version: '1' });
    await extra.connect(transport, { prior: { kind: 'legacy' } } as never);
    assert.equal(text(await extra.callTool({ name: 'files__read_text_file', arguments: { path: join(dir, 'hello.txt') } })), 'hello from the filesystem server');
    const mine = fsChildren().filter((pid) => !before.has(pid));
    assert.equal(mine.length, 1);
    await transport.terminateSession();
    await extra.close();
    await waitFor(() => !fsChildren().includes(mine[0]!), 10_000, 'the stdio child stopped');
  });
});

describe('federation: a slow server does not stall the merged list', () => {
  let slow: UpstreamKit;
  let quick: UpstreamKit;
  let paged: UpstreamKit;
  let sluice: TestGateway;
  before(async () => {
    quick = await startV1();
    slow = await startUpstreamKit({
      name: 'slow-lists',
      eras: 'legacy',
      registerV2: () => undefined,
      registerV1: (s) => {
        s.server.registerCapabilities({ tools: {} });
        s.server.setRequestHandler(ListToolsRequestSchema, async () => {
          await sleep(2500);
          return { tools: [{ name: 'late', inputSchema: { type: 'object' } }] };
        });
      },
    });
    paged = await startUpstreamKit({
      name: 'paged-lists',
      eras: 'legacy',
      registerV2: () => undefined,
      registerV1: (s) => {
        s.server.registerCapabilities({ tools: {} });
        s.server.setRequestHandler(ListToolsRequestSchema, async (req) => {
          const page = req.params?.cursor === undefined ? 0 : Number(req.params.cursor);
          const tools = [0, 1].map((i) => ({ name: `page${page}_tool${i}`, inputSchema: { type: 'object' as const } }));
          return page < 2 ? { tools, nextCursor: String(page + 1) } : { tools };
        });
      },
    });
    sluice = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      federation: { listTimeout: '400ms' },
      routes: [
        { path: '/mix', servers: { quick: { upstream: quick.url }, slow: { upstream: slow.url } } },
        { path: '/paged', servers: { quick: { upstream: quick.url }, paged: { upstream: paged.url } } },
      ] as never,
    });
  });
  after(async () => {
    await sluice.close();
    await quick.close();
    await slow.close();
    await paged.close();
  });

  it("pagination spans servers: the first page holds every server's first page, cursors go on where a server has more", async () => {
    // The SDK v1 client asks one page at a time (the v2 client's listTools follows every cursor itself).
    const client = new ClientV1({ name: 'pager', version: '1' });
    await client.connect(new StreamableHTTPClientTransportV1(new URL(`${sluice.base}/paged`)));
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const r = await client.listTools(cursor === undefined ? {} : { cursor });
      pages.push(r.tools.map((t) => t.name));
      cursor = r.nextCursor;
    } while (cursor !== undefined && pages.length < 10);
    assert.equal(pages.length, 3);
    assert.ok(pages[0]!.includes('quick__echo') && pages[0]!.includes('paged__page0_tool0'), pages[0]!.join(' '));
    assert.deepEqual(pages[1], ['paged__page1_tool0', 'paged__page1_tool1']);
    assert.deepEqual(pages[2], ['paged__page2_tool0', 'paged__page2_tool1']);
    const bad = await client.listTools({ cursor: 'not-a-cursor' }).then(() => undefined, (e: { code?: number }) => e);
    assert.equal(bad?.code, -32602);
    await client.close();
  });

  it('an HTTP+SSE client (SDK v1) is served the same federation at <path>/sse', async () => {
    const old = new ClientV1({ name: 'sse-client', version: '1' });
    await old.connect(new SSEClientTransport(new URL(`${sluice.base}/paged/sse`)));
    const tools = (await old.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('quick__echo') && tools.includes('paged__page0_tool0'), tools.join(' '));
    assert.equal(text(await old.callTool({ name: 'quick__echo', arguments: { message: 'over sse' } })), 'over sse');
    await old.close();
  });

  it('answers within federation.listTimeout with what answered, counts and logs the slow one, and announces it when it answers', async () => {
    const client = await connect(`${sluice.base}/mix`);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    const started = Date.now();
    const first = (await client.listTools()).tools.map((t) => t.name);
    const took = Date.now() - started;
    assert.ok(took < 2000, `answered in ${took} ms`);
    assert.ok(first.includes('quick__echo') && !first.includes('slow__late'), first.join(' '));
    assert.equal(await metric(sluice, /^sluice_federated_list_timeouts_total\{route="\/mix",server="slow",method="tools\/list"\}/), 1);
    assert.ok(sluice.logs.some((l) => l['server'] === 'slow' && String(l['msg']).includes('federation.listTimeout')));
    await waitFor(() => changed > 0, 5000, 'list_changed once the slow server answered');
    await client.close();
  });
});

describe('federation: a 2026-07-28-only server beside a 2025 one', () => {
  let modern: StatefulServer;
  let v1: UpstreamKit;
  let sluice: TestGateway;
  before(async () => {
    modern = await startStatefulServer('modern-member');
    v1 = await startV1();
    sluice = await startTestGateway({ routes: [{ path: '/mixed', servers: { modern: { upstream: modern.url }, old: { upstream: v1.url } } }] as never });
  });
  after(async () => {
    await sluice.close();
    await modern.close();
    await v1.close();
  });

  it('a 2025 client reaches both: x-mcp-header arguments mirrored, sampling asked through input_required, list changes and a subscribed resource heard on a listen', async () => {
    const client = await connect(`${sluice.base}/mixed`, { sampling: true });
    client.setRequestHandler('sampling/createMessage', async () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'short' } }) as never);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('modern__weather') && tools.includes('old__echo'), tools.join(' '));
    assert.equal(text(await client.callTool({ name: 'modern__weather', arguments: { region: 'north' } })), 'sunny in north');
    assert.equal(modern.heads.findLast((h) => h.method === 'tools/call')?.headers['mcp-param-region'], 'north');
    assert.equal(text(await client.callTool({ name: 'modern__summarize', arguments: { text: 'long' } })), 'summary from modern-member: short');
    assert.equal(text(await client.callTool({ name: 'old__echo', arguments: { message: 'old' } })), 'old');
    await waitFor(() => modern.listens.open > 0, 5000, 'the listen stream to the 2026-07-28 server');
    modern.toolsChanged();
    await waitFor(() => changed > 0, 5000, 'list_changed from the 2026-07-28 server');
    // resources/subscribe, which 2026-07-28 does not have, rides the link's listen stream.
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params.uri));
    assert.equal((await client.readResource({ uri: 'modern+modern://note' })).contents[0]?.uri, 'modern+modern://note');
    await client.subscribeResource({ uri: 'modern+modern://note' });
    await waitFor(() => modern.listens.opened >= 2, 5000, 'the listen reopened with the subscription');
    await sleep(200);
    modern.resourceUpdated('modern://note');
    await waitFor(() => updates.length > 0, 5000, 'resources/updated from the 2026-07-28 server');
    assert.equal(updates[0], 'modern+modern://note');
    await client.close();
  });
});

describe('federation: per-caller catalogues', () => {
  let v1: UpstreamKit;
  let everything: { url: string; child: ChildProcess };
  let sluice: TestGateway;
  const keys = { ops: 'federation-key-ops-0123456789', dev: 'federation-key-dev-0123456789' };
  before(async () => {
    v1 = await startV1();
    everything = await startEverything();
    sluice = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      routes: [
        {
          path: '/team',
          servers: { sdk: { upstream: v1.url }, every: { upstream: everything.url } },
          auth: {
            mode: 'resource-server',
            resource: 'http://127.0.0.1/team',
            apiKeys: [
              { name: 'ops', sha256: hashApiKey(keys.ops), scopes: ['sdk'] },
              { name: 'dev', sha256: hashApiKey(keys.dev), scopes: ['every'] },
            ],
          },
          policy: {
            rules: [
              { effect: 'allow', methods: ['tools/call'], names: ['sdk__*'], scopes: ['sdk'] },
              { effect: 'allow', methods: ['tools/call'], names: ['every__*'], scopes: ['every'] },
              { effect: 'deny', methods: ['tools/call', 'tools/list-never'], names: ['*'] },
            ],
          },
        },
      ] as never,
    });
  });
  after(async () => {
    await sluice.close();
    await v1.close();
    everything.child.kill('SIGTERM');
  });

  it('two API keys see different tool lists and are refused the other’s calls with no upstream request', async () => {
    const ops = await connect(`${sluice.base}/team`, { token: keys.ops });
    const dev = await connect(`${sluice.base}/team`, { token: keys.dev });
    const opsTools = (await ops.listTools()).tools.map((t) => t.name);
    const devTools = (await dev.listTools()).tools.map((t) => t.name);
    assert.ok(opsTools.length > 0 && opsTools.every((n) => n.startsWith('sdk__')), opsTools.join(' '));
    assert.ok(devTools.length > 0 && devTools.every((n) => n.startsWith('every__')), devTools.join(' '));
    assert.equal(text(await ops.callTool({ name: 'sdk__echo', arguments: { message: 'mine' } })), 'mine');
    const sent = await metric(sluice, /^sluice_federated_requests_total\{route="\/team",server="every"\}/);
    const refused = await ops.callTool({ name: 'every__echo', arguments: { message: 'theirs' } }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    assert.equal(refused?.code, -32003);
    assert.equal(await metric(sluice, /^sluice_federated_requests_total\{route="\/team",server="every"\}/), sent, 'no request reached server-everything');
    const refusedToo = await dev.callTool({ name: 'sdk__echo', arguments: { message: 'x' } }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    assert.equal(refusedToo?.code, -32003);
    await ops.close();
    await dev.close();
  });
});

describe("federation: a stdio server's processes are bounded by its maxProcesses", () => {
  let v1: UpstreamKit;
  let sluice: TestGateway;
  before(async () => {
    v1 = await startV1();
    sluice = await startTestGateway({
      federation: { retryAfter: '200ms' },
      routes: [
        {
          path: '/bounded',
          servers: {
            local: { upstream: { stdio: { command: process.execPath, args: [STDIO_FIXTURE], maxProcesses: 1 } } },
            sdk: { upstream: v1.url },
          },
        },
      ] as never,
    });
  });
  after(async () => {
    await sluice.close();
    await v1.close();
  });

  it('a second session finds the stdio server unavailable (naming the bound), keeps the others, and gets it once the first session ends', async () => {
    const firstTransport = new StreamableHTTPClientTransport(new URL(`${sluice.base}/bounded`));
    const first = new Client({ name: 'first', version: '1' });
    await first.connect(firstTransport, { prior: { kind: 'legacy' } } as never);
    assert.match(text(await first.callTool({ name: 'local__pid', arguments: {} })), /^\d+$/);
    const second = await connect(`${sluice.base}/bounded`);
    let changed = 0;
    second.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    const refused = await second.callTool({ name: 'local__pid', arguments: {} }).then(() => undefined, (e: Error) => e);
    assert.match(String(refused?.message), /federated server "local" is unavailable: .*maxProcesses/);
    assert.equal(text(await second.callTool({ name: 'sdk__echo', arguments: { message: 'other' } })), 'other');
    await firstTransport.terminateSession();
    await first.close();
    await waitFor(() => changed > 0, 10_000, 'list_changed once a process slot is free');
    assert.match(text(await second.callTool({ name: 'local__pid', arguments: {} })), /^\d+$/);
    await second.close();
  });
});

describe('federation: config', () => {
  it('a prefix collision is a config error naming both servers', async () => {
    const { buildConfig } = await import('../../src/config/load.ts');
    const parseConfig = (c: unknown) => buildConfig(c, 'test');
    assert.throws(
      () => parseConfig({ routes: [{ path: '/t', servers: { a: { upstream: 'http://127.0.0.1:1/', prefix: 'x' }, b: { upstream: 'http://127.0.0.1:2/', prefix: 'x' } } }] }),
      /servers "a" and "b" have the same prefix "x"/,
    );
    assert.throws(() => parseConfig({ routes: [{ path: '/t', servers: { a: { upstream: 'http://127.0.0.1:1/' } }, upstream: 'http://127.0.0.1:1/' }] }), /`upstream` or `servers`, not both/);
    assert.throws(() => parseConfig({ routes: [{ path: '/t', servers: { a: { upstream: 'http://127.0.0.1:1/', prefix: 'a__b' } } }] }), /contains the separator/);
    // `a` and `a-` with separator `--`: "a---whoami" begins with both "a--" and "a---" (issue 32, item 11).
    assert.throws(
      () => parseConfig({ routes: [{ path: '/t', separator: '--', servers: { a: { upstream: 'http://127.0.0.1:1/' }, 'a-': { upstream: 'http://127.0.0.1:2/' } } }] }),
      /server "a-"'s names begin with "a---", which begins with server "a"'s "a--"/,
    );
    assert.throws(
      () => parseConfig({ routes: [{ path: '/t', separator: '_', servers: { x: { upstream: 'http://127.0.0.1:1/', prefix: 'gh' }, y: { upstream: 'http://127.0.0.1:2/', prefix: 'gh_x' } } }] }),
      /begins with server "x"'s "gh_"/,
    );
    parseConfig({ routes: [{ path: '/t', separator: '--', servers: { ab: { upstream: 'http://127.0.0.1:1/' }, a: { upstream: 'http://127.0.0.1:2/' } } }] });
    // A loaded config is fed back in on reload: a federated route's output parses again, the same.
    const loaded = parseConfig({ routes: [{ path: '/team', servers: { web: { upstream: ['http://127.0.0.1:1/mcp', 'http://127.0.0.1:2/mcp'], prefix: 'w' }, files: { upstream: { stdio: { command: 'node', args: ['x'] } } } } }] });
    assert.deepEqual(parseConfig(loaded).routes, loaded.routes);
    assert.equal(loaded.routes[0]?.servers?.['files']?.stdio?.command, 'node');
  });
});
