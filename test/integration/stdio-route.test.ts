// Stdio servers served remotely through a broker route (issue 19): real stdio servers from npm
// (@modelcontextprotocol/server-everything, server-filesystem) and an SDK fixture, with the
// official SDK clients v1 and v2; one child per session, and every way a session ends stops it.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { buildConfig } from '../../src/config/load.ts';
import { alive, childrenOf } from '../fixtures/process-table.ts';
import { ConfigError } from '../../src/config/load.ts';
import {
  cuttingFetch,
  JSON_HEADERS,
  rpc,
  send,
  sleep,
  startTestGateway,
  waitFor,
  type TestGateway,
} from '../helpers.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const FILESYSTEM = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const FIXTURE = new URL('../fixtures/stdio-server.ts', import.meta.url).pathname;

type StdioInput = { command: string; args?: string[]; [k: string]: unknown };
const stdioRoute = (stdio: StdioInput, path = '/mcp') => ({ path, upstream: { stdio } as never });

async function connectV1(
  base: string,
  opts: { capabilities?: Record<string, unknown> } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'stdio-test', version: '1' }, { capabilities: opts.capabilities ?? {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`));
  await client.connect(transport);
  return { client, transport };
}

const text = (r: unknown): string => (r as { content: { text: string }[] }).content[0]?.text ?? '';

describe('a stdio route to @modelcontextprotocol/server-everything', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [EVERYTHING, 'stdio'] })] });
  });
  after(async () => {
    await gw.close();
    assert.deepEqual(childrenOf(process.pid), [], 'no child left after shutdown');
  });

  it('SDK v1: tools, resources, progress one by one, sampling and elicitation; DELETE stops the child', async () => {
    const { client, transport } = await connectV1(gw.base, { capabilities: { sampling: {}, elicitation: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'sampled!' },
      model: 'm',
    }));
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: 'accept',
      content: { name: 'ann', color: 'red' },
    }));
    assert.equal(childrenOf(process.pid).length, 1, 'one child for the session');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo') && tools.includes('trigger-sampling-request'), tools.join(','));
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })), 'Echo: hi');
    const { resources } = await client.listResources();
    const read = await client.readResource({ uri: resources[0]!.uri });
    assert.equal(read.contents[0]?.uri, resources[0]!.uri);
    const at: number[] = [];
    const t0 = performance.now();
    await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } }, undefined, {
      onprogress: () => at.push(performance.now() - t0),
    });
    assert.equal(at.length, 4);
    for (let i = 1; i < at.length; i++)
      assert.ok(
        at[i]! - at[i - 1]! > 250,
        `progress ${i} came ${Math.round(at[i]! - at[i - 1]!)} ms after the one before: one by one, not batched`,
      );
    const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello' } });
    assert.match(JSON.stringify(sampled), /sampled!/);
    const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(elicited), /Name: ann/);
    const pid = childrenOf(process.pid)[0]!.pid;
    await transport.terminateSession();
    await client.close();
    await waitFor(() => !alive(pid), 5000, 'the child gone after DELETE');
    assert.deepEqual(childrenOf(process.pid), []);
  });

  it('SDK v2 client with a pinned 2025 era: sessions, a child each', async () => {
    const legacy = { versionNegotiation: { mode: 'legacy' as const } };
    const a = new ClientV2({ name: 'v2', version: '1' }, legacy);
    const b = new ClientV2({ name: 'v2b', version: '1' }, legacy);
    const ta = new TransportV2(new URL(`${gw.base}/mcp`));
    const tb = new TransportV2(new URL(`${gw.base}/mcp`));
    await a.connect(ta);
    await b.connect(tb);
    assert.equal(childrenOf(process.pid).length, 2);
    assert.equal(text(await a.callTool({ name: 'echo', arguments: { message: 'v2' } })), 'Echo: v2');
    assert.ok((await b.listTools()).tools.length > 5);
    await ta.terminateSession();
    await tb.terminateSession();
    await a.close();
    await b.close();
    await waitFor(() => childrenOf(process.pid).length === 0, 5000, 'both children stopped');
  });

  it('an HTTP+SSE (2024-11-05) client: its own child, which stops when the stream closes', async () => {
    const client = new Client({ name: 'sse', version: '1' });
    const transport = new SSEClientTransport(new URL(`${gw.base}/mcp/sse`));
    await client.connect(transport);
    assert.equal(childrenOf(process.pid).length, 1);
    const pid = childrenOf(process.pid)[0]!.pid;
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'over sse' } })), 'Echo: over sse');
    const at: number[] = [];
    await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: () => at.push(performance.now()),
    });
    // The SDK v1 SSE client settles the call on its answer before it reads the last progress event
    // (2 of 3 against server-everything's own HTTP+SSE transport too).
    assert.ok(at.length >= 2, `${at.length} progress notifications`);
    await client.close();
    await waitFor(() => !alive(pid), 5000, 'the child gone with the stream');
  });

  it("a POST stream cut mid-call resumes with Last-Event-ID from Sluice's own event buffer", async () => {
    const cutter = cuttingFetch((body) => body.includes('trigger-long-running-operation'), 2);
    const client = new ClientV2({ name: 'resume', version: '1' });
    const transport = new TransportV2(new URL(`${gw.base}/mcp`), {
      fetch: cutter.fetch,
      reconnectionOptions: {
        initialReconnectionDelay: 50,
        maxReconnectionDelay: 200,
        reconnectionDelayGrowFactor: 1,
        maxRetries: 5,
      },
    });
    await client.connect(transport);
    const progress: number[] = [];
    const r = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
      { onprogress: (p: { progress: number }) => progress.push(p.progress), timeout: 15_000 },
    );
    assert.ok(cutter.wasCut());
    assert.equal(cutter.resumedWith.length, 1, 'resumed once');
    assert.deepEqual(progress, [1, 2, 3, 4], 'nothing lost, nothing twice');
    assert.match(JSON.stringify(r.content), /completed/);
    await transport.terminateSession();
    await client.close();
  });

  it('the access log names the route kind and the child', async () => {
    const line =
      gw.logs.filter((l) => l['msg'] === undefined && l['rpcMethod'] === 'tools/call').at(-1) ??
      gw.logs.filter((l) => l['rpcMethod'] === 'tools/call').at(-1);
    assert.equal(line?.['kind'], 'broker');
    assert.match(String(line?.['upstream']), /^stdio:.*#\d+$/);
    assert.ok(Number(line?.['bytesOut']) > 0, "the answer's bytes are counted");
  });

  it('a 2026-07-28 client (SDK v2, pinned) is bridged: discover, tools, a sampling round trip; its children end with the pool', async () => {
    const client = new ClientV2(
      { name: 'modern', version: '1' },
      { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    client.setRequestHandler('sampling/createMessage', async () => ({
      model: 'm',
      role: 'assistant',
      content: { type: 'text', text: 'sampled for 2026' },
    }));
    await client.connect(new TransportV2(new URL(`${gw.base}/mcp`)));
    assert.equal(client.getProtocolEra(), 'modern');
    assert.match(client.getServerVersion()?.name ?? '', /everything/);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo'), tools.join(','));
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })), 'Echo: hi');
    const sampled = await client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'p', maxTokens: 10 },
    });
    assert.match(JSON.stringify(sampled.content), /sampled for 2026/);
    const line = gw.logs.filter((l) => l['rpcMethod'] === 'tools/call').at(-1);
    assert.match(String(line?.['upstream']), /bridged 2026-07-28→2025/);
    assert.ok(childrenOf(process.pid).length >= 1, 'pooled stdio sessions run as children');
    await client.close();
  });
});

describe('a stdio route to @modelcontextprotocol/server-filesystem on a temporary directory', () => {
  it('lists the directory and reads a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-fs-'));
    writeFileSync(join(dir, 'hello.txt'), 'hello from disk');
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FILESYSTEM, dir] })] });
    try {
      const { client, transport } = await connectV1(gw.base);
      const listing = await client.callTool({ name: 'list_directory', arguments: { path: dir } });
      assert.match(JSON.stringify(listing), /hello\.txt/);
      const file = await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } });
      assert.match(JSON.stringify(file), /hello from disk/);
      await transport.terminateSession();
      await client.close();
    } finally {
      await gw.close();
    }
    assert.deepEqual(childrenOf(process.pid), []);
  });
});

describe('stdio session lifecycle (an SDK stdio server fixture)', () => {
  it('cancellation reaches the child', async () => {
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })] });
    try {
      const { client, transport } = await connectV1(gw.base);
      const ac = new AbortController();
      const call = client.callTool({ name: 'wait', arguments: { ms: 20_000 } }, undefined, { signal: ac.signal });
      await sleep(300);
      ac.abort();
      await assert.rejects(call);
      await waitFor(() => true, 10);
      let seen = '0';
      for (let i = 0; i < 50 && seen === '0'; i++) {
        seen = text(await client.callTool({ name: 'cancelled', arguments: {} }));
        if (seen === '0') await sleep(50);
      }
      assert.equal(seen, '1', 'the child saw notifications/cancelled');
      await transport.terminateSession();
    } finally {
      await gw.close();
    }
  });

  it('a child that crashes ends its session: the next request is 404, the calls waiting get an error', async () => {
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })] });
    try {
      const { client, transport } = await connectV1(gw.base);
      const pid = Number(text(await client.callTool({ name: 'pid', arguments: {} })));
      const waiting = client.callTool({ name: 'wait', arguments: { ms: 20_000 } });
      await sleep(100);
      await client.callTool({ name: 'crash', arguments: {} }).catch(() => undefined);
      await assert.rejects(waiting, /stdio server is gone/);
      await waitFor(() => !alive(pid), 5000, 'the child gone');
      const r = await send(`${gw.base}/mcp`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' },
        body: rpc('tools/list'),
      });
      assert.equal(r.status, 404);
      assert.ok(
        gw.logs.some((l) => l['msg'] === 'stdio session ended' && l['cause'] === 'crashed'),
        'the log names the cause',
      );
    } finally {
      await gw.close();
    }
  });

  it("a child's stderr reaches the log with its secrets hidden: a private key over several lines, an AWS secret key, JSON secrets (issue 35)", async () => {
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })] });
    try {
      const { client } = await connectV1(gw.base);
      const secrets = ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'cl13nt-s3cr3t', 'k-abc-123'];
      const text = [
        'loading key',
        '-----BEGIN PRIVATE KEY-----',
        secrets[0],
        'BKcwggSjAgEAAoIBAQC7',
        '-----END PRIVATE KEY-----',
        `AWS_SECRET_ACCESS_KEY=${secrets[1]}`,
        `{"client_id":"app","client_secret":"${secrets[2]}","api_key":"${secrets[3]}"}`,
        'key loaded',
      ].join('\n');
      await client.callTool({ name: 'stderr', arguments: { text } });
      await waitFor(() => gw.logs.some((l) => l['stderr'] === 'key loaded'), 5000, 'the last stderr line');
      const raw = gw.rawLog();
      for (const secret of secrets) assert.ok(!raw.includes(secret), `${secret} reached the log`);
      assert.ok(gw.logs.some((l) => l['stderr'] === 'loading key'), 'ordinary lines are kept');
      await client.close();
    } finally {
      await gw.close();
    }
  });

  it('an idle session ends and its child with it', async () => {
    const gw = await startTestGateway({
      routes: [stdioRoute({ command: process.execPath, args: [FIXTURE], idleTimeout: '400ms' })],
    });
    try {
      const { client } = await connectV1(gw.base);
      const pid = Number(text(await client.callTool({ name: 'pid', arguments: {} })));
      // The SDK client opens a GET stream; closing the client leaves the session with nothing open.
      await client.close();
      await waitFor(() => !alive(pid), 5000, 'the idle child stopped');
      assert.ok(gw.logs.some((l) => l['msg'] === 'stdio session ended' && l['cause'] === 'idle'));
    } finally {
      await gw.close();
    }
  });

  it('maxProcesses holds: over it a new session gets 503 with Retry-After and nothing is spawned', async () => {
    const gw = await startTestGateway({
      routes: [stdioRoute({ command: process.execPath, args: [FIXTURE], maxProcesses: 2 })],
    });
    try {
      const a = await connectV1(gw.base);
      const b = await connectV1(gw.base);
      const init = rpc('initialize', {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'x', version: '1' },
      });
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: init });
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(childrenOf(process.pid).length, 2);
      await a.transport.terminateSession();
      await b.transport.terminateSession();
    } finally {
      await gw.close();
    }
  });

  it('a child that ignores SIGTERM is killed after killGrace; a grandchild holding its pipes goes with its group', async () => {
    const gw = await startTestGateway({
      routes: [stdioRoute({ command: process.execPath, args: [FIXTURE, '--ignore-term'], killGrace: '300ms' })],
    });
    try {
      const { client, transport } = await connectV1(gw.base);
      const pid = Number(text(await client.callTool({ name: 'pid', arguments: {} })));
      const grandchild = Number(text(await client.callTool({ name: 'grandchild', arguments: {} })));
      assert.ok(alive(grandchild));
      const t0 = performance.now();
      await transport.terminateSession();
      await waitFor(() => !alive(pid) && !alive(grandchild), 5000, 'child and grandchild gone');
      const took = performance.now() - t0;
      assert.ok(took >= 250, `SIGKILL waited for the grace period (${Math.round(took)} ms)`);
      assert.ok(
        gw.logs.some((l) => String(l['stderr'] ?? '').includes('ignoring SIGTERM')),
        'its stderr reached the log',
      );
    } finally {
      await gw.close();
    }
  });

  it('Sluice shutting down stops every child', async () => {
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })] });
    const sessions = [await connectV1(gw.base), await connectV1(gw.base), await connectV1(gw.base)];
    assert.equal(childrenOf(process.pid).length, 3);
    await gw.close();
    assert.deepEqual(childrenOf(process.pid), []);
    for (const s of sessions) await s.client.close().catch(() => undefined);
  });
});

describe('stdio routes: the GET stream, reloads, floods', () => {
  it('a list change the child sends mid-call reaches the client on its GET stream', async () => {
    const gw = await startTestGateway({ routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })] });
    try {
      const { client, transport } = await connectV1(gw.base);
      let changed = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        changed++;
      });
      await sleep(200); // the SDK client opens its GET stream after initialize
      assert.equal(text(await client.callTool({ name: 'list_changed', arguments: {} })), 'sent');
      await waitFor(() => changed === 1, 3000, 'the notification on the GET stream');
      await transport.terminateSession();
    } finally {
      await gw.close();
    }
  });

  it('a reload keeps the sessions of a route it leaves the same, and stops those of a route it removes', async () => {
    const keep = stdioRoute({ command: process.execPath, args: [FIXTURE] }, '/mcp');
    const drop = stdioRoute({ command: process.execPath, args: [FIXTURE] }, '/gone');
    const gw = await startTestGateway({ routes: [keep, drop] });
    try {
      const kept = await connectV1(gw.base);
      const goneClient = new Client({ name: 'g', version: '1' });
      await goneClient.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/gone`)));
      const keptPid = Number(text(await kept.client.callTool({ name: 'pid', arguments: {} })));
      const gonePid = Number(text(await goneClient.callTool({ name: 'pid', arguments: {} })));
      gw.gw.reload(buildConfig({ listen: [{ host: '127.0.0.1', port: gw.port }], routes: [keep] }, 'reload'));
      await waitFor(() => !alive(gonePid), 5000, "the removed route's child stopped");
      assert.ok(alive(keptPid));
      assert.equal(
        Number(text(await kept.client.callTool({ name: 'pid', arguments: {} }))),
        keptPid,
        'the kept session goes on',
      );
      await goneClient.close().catch(() => undefined);
      await kept.transport.terminateSession();
    } finally {
      await gw.close();
    }
  });

  it('a child that floods, or writes a stdout line over limits.body, is stopped with a log line saying so', async () => {
    const gw = await startTestGateway({
      routes: [
        stdioRoute({ command: process.execPath, args: [FIXTURE, '--flood'], maxLinesPerSecond: 500 }, '/flood'),
        stdioRoute({ command: process.execPath, args: [FIXTURE] }, '/mcp'),
      ],
      limits: { body: '64KiB' },
    });
    try {
      const flood = new Client({ name: 'f', version: '1' });
      await flood.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/flood`)));
      await waitFor(() => gw.logs.some((l) => l['cause'] === 'flooded'), 5000, 'the flooding child stopped');
      assert.match(String(gw.logs.find((l) => l['cause'] === 'flooded')?.['detail']), /more than 500 lines a second/);
      await flood.close().catch(() => undefined);
      const { client } = await connectV1(gw.base);
      await client.callTool({ name: 'long_line', arguments: { bytes: 100_000 } }).catch(() => undefined);
      await waitFor(
        () => gw.logs.some((l) => l['cause'] === 'oversized-line'),
        5000,
        'the child with the long line stopped',
      );
      assert.match(String(gw.logs.find((l) => l['cause'] === 'oversized-line')?.['detail']), /over 65536 bytes/);
      await client.close().catch(() => undefined);
      await waitFor(() => childrenOf(process.pid).length === 0, 5000, 'both gone');
    } finally {
      await gw.close();
    }
  });
});

describe('bad stdio servers', () => {
  const init = rpc('initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'x', version: '1' },
  });

  it('a command that does not exist, or exits at once: a clear JSON-RPC error and a log line naming the cause; other routes keep serving', async () => {
    const gw = await startTestGateway({
      routes: [
        stdioRoute({ command: 'sluice-no-such-command-here' }, '/missing'),
        stdioRoute({ command: process.execPath, args: [FIXTURE, '--exit-at-once'] }, '/quits'),
        stdioRoute({ command: process.execPath, args: [FIXTURE] }, '/mcp'),
      ],
    });
    try {
      const missing = await send(`${gw.base}/missing`, { method: 'POST', headers: JSON_HEADERS, body: init });
      const body = JSON.parse(missing.body.toString()) as { error: { code: number; message: string } };
      assert.equal(missing.status, 502);
      assert.match(body.error.message, /could not be started: sluice-no-such-command-here: command not found/);
      assert.ok(gw.logs.some((l) => l['cause'] === 'spawn-failed' && /command not found/.test(String(l['detail']))));
      const quits = await send(`${gw.base}/quits`, { method: 'POST', headers: JSON_HEADERS, body: init });
      assert.match(quits.body.toString(), /stdio server is gone: exited with status 3/);
      assert.ok(gw.logs.some((l) => l['cause'] === 'crashed' && /status 3/.test(String(l['detail']))));
      const { client, transport } = await connectV1(gw.base);
      assert.ok(Number(text(await client.callTool({ name: 'pid', arguments: {} }))) > 0, 'the good route still serves');
      await transport.terminateSession();
    } finally {
      await gw.close();
    }
  });

  it('stdout lines that are not JSON-RPC are logged and dropped, never sent to the client', async () => {
    const gw = await startTestGateway({
      routes: [stdioRoute({ command: process.execPath, args: [FIXTURE, '--garbage'] })],
    });
    try {
      const { client, transport } = await connectV1(gw.base);
      assert.ok(Number(text(await client.callTool({ name: 'pid', arguments: {} }))) > 0);
      const dropped = gw.logs.filter((l) => String(l['msg']).includes('not JSON-RPC'));
      assert.equal(dropped.length, 2);
      await transport.terminateSession();
    } finally {
      await gw.close();
    }
  });
});

describe('stdio routes: metrics and config', () => {
  it('children running, spawned and exited by cause are metrics', async () => {
    const gw = await startTestGateway({
      routes: [stdioRoute({ command: process.execPath, args: [FIXTURE] })],
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    });
    try {
      const a = await connectV1(gw.base);
      const b = await connectV1(gw.base);
      const metrics = async () => (await fetch(`http://127.0.0.1:${gw.gw.adminAddress!.port}/metrics`)).text();
      assert.match(await metrics(), /^sluice_stdio_children\{route="\/mcp"\} 2$/m);
      await a.transport.terminateSession();
      await b.client.callTool({ name: 'crash', arguments: {} }).catch(() => undefined);
      await waitFor(() => childrenOf(process.pid).length === 0, 5000, 'both children gone');
      const text = await metrics();
      assert.match(text, /^sluice_stdio_children_spawned_total\{route="\/mcp"\} 2$/m);
      assert.match(text, /^sluice_stdio_children_exited_total\{route="\/mcp",cause="deleted"\} 1$/m);
      assert.match(text, /^sluice_stdio_children_exited_total\{route="\/mcp",cause="crashed"\} 1$/m);
      assert.match(text, /^sluice_stdio_children\{route="\/mcp"\} 0$/m);
    } finally {
      await gw.close();
    }
  });

  it('the schema is strict: a bad stdio field is named at its path', () => {
    const bad = (stdio: unknown) => {
      try {
        buildConfig({ routes: [{ path: '/mcp', upstream: { stdio } as never }] }, 'test');
        return 'accepted';
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return (err as Error).message;
      }
    };
    assert.match(bad({ command: '' }), /upstream\.stdio\.command/);
    assert.match(bad({ command: 'x', shell: true }), /shell/);
    assert.match(bad({ command: 'x', env: { 'BAD NAME': 'v' } }), /upstream\.stdio\.env/);
    assert.match(bad({ command: 'x', maxProcesses: 0 }), /maxProcesses/);
    assert.equal(bad({ command: 'x' }), 'accepted');
  });

  it('a loaded config fed back in (a reload, a tool editing it) reads the same, stdio and relay routes alike', () => {
    const first = buildConfig(
      { routes: [stdioRoute({ command: 'x', args: ['a'] }, '/s'), { path: '/r', upstream: 'http://127.0.0.1:9/mcp' }] },
      'test',
    );
    const again = buildConfig({ routes: first.routes as never }, 'again');
    assert.deepEqual(again.routes, first.routes);
    assert.equal(again.routes[0]?.stdio?.command, 'x');
  });
});
