// `sluice serve --workers 2` as a user runs it: two worker processes behind the shared port. Any
// worker answers any session (relay sessions by their sealed token; a stdio route's sessions,
// which live in one worker, handed to the worker that holds them); SIGHUP reloads both without
// dropping streams; a killed worker is replaced; SIGTERM drains both and exits 0; /metrics sums
// the workers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { freePort, send, sleep, spawnSluice, startDemoUpstream, waitFor, type SluiceProcess } from '../helpers.ts';

const STDIO_SERVER = new URL('../fixtures/stdio-server.ts', import.meta.url).pathname;
const HOSTILE_STDIO = new URL('../fixtures/hostile-stdio-server.ts', import.meta.url).pathname;

async function client(url: string): Promise<Client> {
  const c = new Client({ name: 'workers-test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)), { prior: { kind: 'legacy' } } as never);
  return c;
}

const text = (r: unknown): string => (r as { content: { text?: string }[] }).content[0]?.text ?? '';

function lines(p: SluiceProcess): Record<string, unknown>[] {
  return p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function metric(adminPort: number, name: RegExp): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return body.split('\n').filter((l) => name.test(l)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** A demo upstream and `sluice serve --workers 2` in front of it, on free ports; `rest` gives the config after `admin`. */
interface Workers {
  upstream: UpstreamKit;
  sluice: SluiceProcess;
  dir: string;
  port: number;
  adminPort: number;
  stop(): Promise<void>;
}

async function startWorkers(admin: string, rest: (dir: string, upstream: UpstreamKit) => string[]): Promise<Workers> {
  const upstream = await startDemoUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-workers-test-'));
  const port = await freePort();
  const adminPort = await freePort();
  const config = join(dir, 'sluice.yaml');
  writeFileSync(
    config,
    [
      `listen: [{ host: 127.0.0.1, port: ${port} }]`,
      `admin: { listen: { host: 127.0.0.1, port: ${adminPort} }${admin} }`,
      ...rest(dir, upstream),
    ].join('\n'),
  );
  const sluice = await spawnSluice(['serve', '--config', config, '--workers', '2'], 'admin at');
  return {
    upstream,
    sluice,
    dir,
    port,
    adminPort,
    stop: async () => {
      await sluice.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('serve --workers 2', () => {
  let w: Workers;
  let sluice: SluiceProcess;
  let port: number;
  let adminPort: number;
  before(async () => {
    w = await startWorkers('', (_dir, up) => [
      'timeouts: { heartbeat: 1s }',
      'routes:',
      `  - { path: /mcp, upstream: ${up.url} }`,
      `  - { path: /local, upstream: { stdio: { command: ${process.execPath}, args: [${STDIO_SERVER}] } } }`,
      `  - { path: /ask, upstream: { stdio: { command: ${process.execPath}, args: [${HOSTILE_STDIO}] } } }`,
    ]);
    ({ sluice, port, adminPort } = w);
  });
  after(() => w?.stop());

  it('100 sessions through the shared port: every call answered, both workers serving, sessions crossing workers', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => client(`http://127.0.0.1:${port}/mcp`)));
    const answers = await Promise.all(clients.map((c, i) => c.callTool({ name: 'echo', arguments: { message: `s${i}` } })));
    answers.forEach((a, i) => assert.equal(text(a), `s${i}`));
    await Promise.all(clients.map((c) => c.close()));
    await waitFor(() => lines(sluice).filter((l) => l['msg'] === 'access' && l['rpcMethod'] === 'tools/call').length >= 100, 5000, 'access lines');
    const calls = lines(sluice).filter((l) => l['msg'] === 'access' && l['route'] === '/mcp');
    const byWorker = new Set(calls.map((l) => l['worker']));
    assert.deepEqual([...byWorker].sort(), [1, 2], 'both workers answered');
    const workersOf = new Map<unknown, Set<unknown>>();
    for (const l of calls) workersOf.set(l['session'], (workersOf.get(l['session']) ?? new Set()).add(l['worker']));
    assert.ok([...workersOf.values()].some((w) => w.size === 2), 'some session was served by both workers');
  });

  it("a stdio route's sessions, each living in one worker, are reached through either worker", async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => client(`http://127.0.0.1:${port}/local`)));
    for (let round = 0; round < 4; round++) {
      const pids = await Promise.all(clients.map((c) => c.callTool({ name: 'pid', arguments: {} })));
      assert.ok(pids.every((p) => /^\d+$/.test(text(p))));
    }
    await Promise.all(clients.map((c) => c.close()));
    const handed = lines(sluice).filter((l) => l['msg'] === 'access' && String(l['upstream']).startsWith('worker '));
    assert.ok(handed.length > 0, 'some requests were handed to the worker holding their session');
    assert.ok(lines(sluice).filter((l) => l['route'] === '/local' && l['status'] === 404).length === 0, 'no session was lost');
  });

  it("a 2026-07-28 client's input_required rounds complete whichever worker each round reaches (issue 32, item 1)", async () => {
    // A connection per request, so the rounds of one call spread over both workers.
    const spread = new Agent({ pipelining: 0 });
    const c = new Client(
      { name: 'rounds', version: '1' },
      { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    c.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'ada' } }));
    const fetchSpread = ((url: string, init: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: spread })) as unknown as typeof fetch;
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/ask`), { fetch: fetchSpread }));
    for (let i = 0; i < 6; i++) assert.equal(text(await c.callTool({ name: 'ask', arguments: {} })), 'answered {"name":"ada"}');
    await c.close();
    await spread.close();
    const rounds = lines(sluice).filter((l) => l['msg'] === 'access' && l['route'] === '/ask' && l['rpcMethod'] === 'tools/call');
    assert.ok(rounds.some((l) => String(l['upstream']).startsWith('worker ')), 'some round was handed to the worker holding its call');
    assert.equal(rounds.filter((l) => l['status'] !== 200).length, 0);
  });

  it('/metrics sums requests over the workers and reports each worker; /readyz is ready when both are', async () => {
    const before = await metric(adminPort, /^sluice_requests_total\{route="\/mcp",method="tools\/call"/);
    const c = await client(`http://127.0.0.1:${port}/mcp`);
    for (let i = 0; i < 20; i++) await c.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    await c.close();
    assert.equal((await metric(adminPort, /^sluice_requests_total\{route="\/mcp",method="tools\/call"/)) - before, 20);
    assert.equal(await metric(adminPort, /^sluice_workers /), 2);
    assert.ok((await metric(adminPort, /^sluice_worker_resident_memory_bytes\{worker="2"\}/)) > 0);
    assert.equal((await send(`http://127.0.0.1:${adminPort}/readyz`)).status, 200);
  });

  it('SIGHUP reloads both workers and drops none of the open SSE streams', async () => {
    const streams = await Promise.all(Array.from({ length: 6 }, () => fetch(`http://127.0.0.1:${port}/local/sse`)));
    const readers = streams.map((s) => s.body!.getReader());
    let ended = 0;
    const watching = readers.map(async (r) => {
      for (;;) if ((await r.read()).done) return void ended++;
    });
    const reloadsBefore = lines(sluice).filter((l) => l['msg'] === 'config reloaded').length;
    sluice.child.kill('SIGHUP');
    await waitFor(() => lines(sluice).filter((l) => l['msg'] === 'config reloaded').length >= reloadsBefore + 2, 5000, 'both workers reloaded');
    await sleep(1500);
    assert.equal(ended, 0, 'no stream ended');
    for (const r of readers) void r.cancel();
    await Promise.allSettled(watching);
  });

  it('a killed worker is replaced and the port keeps answering', async () => {
    const up = lines(sluice).filter((l) => l['msg'] === 'worker listening');
    const victim = up.find((l) => l['worker'] === 2)?.['pid'] as number;
    assert.ok(victim > 0);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => lines(sluice).filter((l) => l['msg'] === 'worker listening').length > up.length, 10_000, 'a new worker 2');
    const c = await client(`http://127.0.0.1:${port}/mcp`);
    for (let i = 0; i < 10; i++) assert.equal(text(await c.callTool({ name: 'echo', arguments: { message: `after ${i}` } })), `after ${i}`);
    await c.close();
    assert.ok(lines(sluice).some((l) => l['msg'] === 'worker exited; starting a new one' && l['signal'] === 'SIGKILL'));
  });

  it('SIGTERM drains both workers and the primary exits 0', async () => {
    const code = await sluice.stop();
    assert.equal(code, 0, `${sluice.stderr().slice(-800)}\n${sluice.stdout().split('\n').filter((l) => !l.includes('"access"')).slice(-8).join('\n')}`);
    assert.ok(lines(sluice).some((l) => l['msg'] === 'all workers stopped'));
    assert.equal(lines(sluice).filter((l) => l['msg'] === 'shutting down' && l['signal'] === 'SIGTERM').length, 2, 'each worker drained');
  });
});

describe('serve --workers 2 with registrations', () => {
  const token = 'workers-registrations-token-0123456789';
  let w: Workers;
  let upstream: UpstreamKit;
  let sluice: SluiceProcess;
  let port: number;
  let adminPort: number;
  before(async () => {
    w = await startWorkers(`, token: ${token}`, (dir, up) => [
      `registrations: { enabled: true, file: ${join(dir, 'registrations.json')}, egress: { allow: [127.0.0.1/32] } }`,
      'routes:',
      `  - { path: /mcp, upstream: ${up.url} }`,
    ]);
    ({ upstream, sluice, port, adminPort } = w);
  });
  after(() => w?.stop());

  it('a registration made through the primary is served by both workers, and its removal by neither', async () => {
    const admin = `http://127.0.0.1:${adminPort}/admin/tenants/acme/upstreams`;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const made = await fetch(admin, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'demo', url: upstream.url }) });
    assert.equal(made.status, 201, await made.text());
    assert.equal((await fetch(admin, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await fetch(admin, { method: 'POST', body: '{}' })).status, 401);
    // Token guesses from one address are throttled by the primary too; other addresses go on (issue 35).
    const { request } = await import('node:http');
    const from2 = (auth: string) =>
      new Promise<number>((resolve, reject) => {
        const r = request(admin, { headers: { authorization: auth }, localAddress: '127.0.0.2' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        r.once('error', reject);
        r.end();
      });
    for (let i = 0; i < 20; i++) assert.equal(await from2(`Bearer wrong-${i}`), 401);
    assert.equal(await from2(`Bearer ${token}`), 429);
    assert.equal((await fetch(admin, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    await sleep(300);
    const c = await client(`http://127.0.0.1:${port}/u/acme/demo`);
    assert.equal(text(await c.callTool({ name: 'echo', arguments: { message: 'registered' } })), 'registered');
    await c.close();
    // A connection each (round robin over the workers): every one of them knows the route.
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const fresh = await Promise.all(Array.from({ length: 8 }, () => send(`http://127.0.0.1:${port}/u/acme/demo`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', connection: 'close' }, body: init })));
    assert.ok(fresh.every((r) => r.status === 200), fresh.map((r) => r.status).join(' '));
    await sleep(500);
    const served = lines(sluice).filter((l) => l['msg'] === 'access' && String(l['route']).startsWith('/u/acme/demo') && l['rpcMethod'] === 'initialize');
    assert.deepEqual([...new Set(served.map((l) => l['worker']))].sort(), [1, 2], 'both workers serve the registered route');
    assert.equal((await fetch(`${admin}/demo`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
    await sleep(300);
    const gone = await Promise.all(Array.from({ length: 8 }, () => send(`http://127.0.0.1:${port}/u/acme/demo`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: '{}' })));
    assert.ok(gone.every((r) => r.status === 404), gone.map((r) => r.status).join(' '));
  });

  it('the admin page is served through the primary from one worker, which it names; its stream flows', async () => {
    const ui = `http://127.0.0.1:${adminPort}/ui`;
    assert.equal((await fetch(ui)).status, 401);
    const state = (await (await fetch(`${ui}/state`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      worker: number;
      routes: { path: string }[];
    };
    assert.equal(state.worker, 1);
    assert.ok(state.routes.some((r) => r.path === '/mcp'));
    const events = await fetch(`${ui}/events`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(events.status, 200);
    const reader = events.body!.getReader();
    let seen = '';
    for (let i = 0; i < 2; ) {
      seen += new TextDecoder().decode((await reader.read()).value);
      i = seen.split('event: state').length - 1;
    }
    await reader.cancel();
  });
});
