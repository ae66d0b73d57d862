// subscriptions/listen through Sluice on a route of three replicas of an SDK 2026-07-28 server,
// each with its own in-process subscription bus (issue 18 part 3): one stream hears every
// replica, once per change; a replica killed leaves the stream open, one that comes back is heard
// again, and the client closing its stream closes every upstream listen.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startStatefulServer, TASKS_EXTENSION, type StatefulServer } from '../fixtures/stateful-modern-server.ts';
import { buildConfig } from '../../src/config/load.ts';
import { sleep, startFakeUpstream, startTestGateway, waitFor, type FakeUpstream, type TestGateway } from '../helpers.ts';

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'listener', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS_EXTENSION]: {} } },
};

interface Listen {
  status: number;
  messages: Record<string, unknown>[];
  heartbeats: () => number;
  ended: () => 'open' | 'clean' | 'cut';
  close(): void;
}

async function listen(base: string, notifications: Record<string, unknown>): Promise<Listen> {
  const ctl = new AbortController();
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    signal: ctl.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'sub-1', method: 'subscriptions/listen', params: { _meta: META, notifications } }),
  });
  const messages: Record<string, unknown>[] = [];
  let beats = 0;
  let state: 'open' | 'clean' | 'cut' = 'open';
  void (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = text.indexOf('\n\n')) !== -1) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          if (block.startsWith(':')) beats++;
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          if (data) messages.push(JSON.parse(data) as Record<string, unknown>);
        }
      }
      state = 'clean';
    } catch {
      state = 'cut';
    }
  })();
  return { status: res.status, messages, heartbeats: () => beats, ended: () => state, close: () => ctl.abort() };
}

const listChanged = (l: Listen): number => l.messages.filter((m) => m['method'] === 'notifications/tools/list_changed').length;

describe('subscriptions/listen fanned in over three replicas', () => {
  let replicas: StatefulServer[];
  let gw: TestGateway;
  before(async () => {
    replicas = [await startStatefulServer('a'), await startStatefulServer('b'), await startStatefulServer('c')];
    gw = await startTestGateway({
      routes: [{ path: '/mcp', upstream: replicas.map((r, i) => ({ url: r.url, id: `r${i}` })), healthCheck: { interval: 0 } }],
      timeouts: { request: '2s', heartbeat: '300ms' },
    });
  });
  after(async () => {
    await gw.close();
    for (const r of replicas) await r.close().catch(() => undefined);
  });

  it('one acknowledgement, each replica heard once per change, the same change from all passed once; survives timeouts.request', async () => {
    const l = await listen(gw.base, { toolsListChanged: true });
    assert.equal(l.status, 200);
    await waitFor(() => replicas.every((r) => r.listens.open === 1), 5000, 'a listen open on every replica');
    await waitFor(() => l.messages.length >= 1, 5000, 'the acknowledgement');
    assert.equal(l.messages[0]?.['method'], 'notifications/subscriptions/acknowledged');
    assert.deepEqual((l.messages[0]?.['params'] as { notifications: unknown }).notifications, { toolsListChanged: true });
    for (const [i, r] of replicas.entries()) {
      r.toolsChanged();
      await waitFor(() => listChanged(l) === i + 1, 3000, `the change on replica ${i}`);
      await sleep(1100); // past the dedupe window, so the next replica's change counts on its own
    }
    assert.equal(listChanged(l), 3, 'exactly once each');
    for (const r of replicas) r.toolsChanged();
    await sleep(600);
    assert.equal(listChanged(l), 4, 'the same signal from three replicas within a second is passed once');
    assert.equal(l.messages.filter((m) => m['method'] === 'notifications/subscriptions/acknowledged').length, 1);
    const subscription = (m: Record<string, unknown>) => ((m['params'] as { _meta?: Record<string, unknown> })._meta ?? {})['io.modelcontextprotocol/subscriptionId'];
    assert.ok(l.messages.every((m) => subscription(m) === 'sub-1'), 'every message names the client\'s subscription');
    assert.ok(l.heartbeats() > 0, 'heartbeats while silent');
    assert.equal(l.ended(), 'open', 'timeouts.request (2 s) did not cut it');
    l.close();
    await waitFor(() => replicas.every((r) => r.listens.open === 0), 5000, 'every upstream listen closed');
  });

  it('a replica killed leaves the stream open and the others heard; it is heard again once back', async () => {
    const l = await listen(gw.base, { toolsListChanged: true });
    await waitFor(() => replicas.every((r) => r.listens.open === 1), 5000, 'a listen open on every replica');
    const killed = replicas[2]!;
    const port = Number(new URL(killed.url).port);
    await killed.kill();
    await sleep(300);
    assert.equal(l.ended(), 'open');
    replicas[0]!.toolsChanged();
    await waitFor(() => listChanged(l) === 1, 3000, 'a change on a live replica');
    await sleep(1100);
    replicas[1]!.toolsChanged();
    await waitFor(() => listChanged(l) === 2, 3000, 'a change on the other live replica');
    // Back on the same address: the fan-in adds it again (its backoff is at most a few seconds here).
    replicas[2] = await startStatefulServer('c-again', port);
    await waitFor(() => replicas[2]!.listens.open === 1, 10_000, 'the returned replica got a listen');
    await sleep(1100);
    replicas[2]!.toolsChanged();
    await waitFor(() => listChanged(l) === 3, 3000, 'a change on the returned replica');
    assert.equal(l.ended(), 'open');
    l.close();
    await waitFor(() => replicas.every((r) => r.listens.open === 0), 5000, 'every upstream listen closed');
    assert.equal(replicas[0]!.listens.opened, 2, 'no listen reopened on the replicas that stayed');
  });

  it('an answer no replica streams (a filter the servers refuse) reaches the client as it is', async () => {
    const res = await fetch(`${gw.base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true } } }),
    });
    const text = await res.text();
    const direct = await fetch(replicas[0]!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true } } }),
    });
    assert.equal(res.status, direct.status);
    assert.deepEqual((JSON.parse(text) as { error?: { code: number } }).error?.code, (JSON.parse(await direct.text()) as { error?: { code: number } }).error?.code);
  });
});

describe('subscriptions/listen on a one-replica route', () => {
  it('is a plain pass-through: the upstream\'s own stream', async () => {
    const only = await startStatefulServer('only');
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: only.url, healthCheck: { interval: 0 } }], timeouts: { heartbeat: 0 } });
    try {
      const l = await listen(gw.base, { toolsListChanged: true });
      await waitFor(() => only.listens.open === 1 && l.messages.length === 1, 5000, 'the listen');
      only.toolsChanged();
      only.toolsChanged();
      await waitFor(() => listChanged(l) === 2, 3000, 'both changes, not deduplicated');
      l.close();
      await waitFor(() => only.listens.open === 0, 5000, 'the upstream listen closed');
    } finally {
      await gw.close();
      await only.close();
    }
  });
});


// The official SDKs have no task notifications on listen streams yet: two small upstreams that
// do what SEP-2663 says (acknowledge the task ids they were given, then notify for each).
describe('task ids on a fanned-in listen', () => {
  it('each replica hears only its own tasks, by its own ids; the client sees one merged acknowledgement and sealed ids', async () => {
    const fakes: FakeUpstream[] = [];
    for (const name of ['A', 'B']) {
      fakes.push(
        await startFakeUpstream((_req, res, body) => {
          const msg = JSON.parse(body.toString()) as { id: number | string; method: string; params: { notifications?: { taskIds?: string[] } } };
          if (msg.method === 'tools/call') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { resultType: 'task', taskId: `task-of-${name}`, status: 'working', createdAt: 'x', lastUpdatedAt: 'x', ttlMs: null } }));
            return;
          }
          const taskIds = msg.params.notifications?.taskIds ?? [];
          const meta = { 'io.modelcontextprotocol/subscriptionId': msg.id };
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: meta, notifications: { taskIds } } })}\n\n`);
          for (const taskId of taskIds) res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tasks', params: { _meta: meta, taskId, status: 'completed', createdAt: 'x', lastUpdatedAt: 'y', ttlMs: null } })}\n\n`);
        }),
      );
    }
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: fakes.map((f, i) => ({ url: `${f.url}/mcp`, id: `f${i}` })), balance: 'round-robin', healthCheck: { interval: 0 } }] });
    try {
      const tokens: string[] = [];
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`${gw.base}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'job' },
          body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'job', _meta: META } }),
        });
        tokens.push(((await r.json()) as { result: { taskId: string } }).result.taskId);
      }
      assert.ok(tokens.every((t) => !t.startsWith('task-of-')), 'the upstream ids never reach the client');
      const l = await listen(gw.base, { taskIds: [...tokens, 'not-a-sealed-id'] });
      await waitFor(() => l.messages.length === 3, 5000, 'the acknowledgement and two task notifications');
      const sent = fakes.map((f) => (JSON.parse(f.requests.at(-1)!.body.toString()) as { params: { notifications: { taskIds: string[] } } }).params.notifications.taskIds);
      assert.deepEqual(sent, [['task-of-A'], ['task-of-B']], 'each replica got only its own task, by its own id');
      const ack = l.messages[0] as { method: string; params: { notifications: { taskIds: string[] } } };
      assert.equal(ack.method, 'notifications/subscriptions/acknowledged');
      assert.deepEqual(ack.params.notifications.taskIds.sort(), [...tokens].sort(), 'one acknowledgement, the same sealed ids the client holds');
      const notified = l.messages.slice(1).map((m) => (m['params'] as { taskId: string }).taskId);
      assert.deepEqual(notified.sort(), [...tokens].sort());
      l.close();
    } finally {
      await gw.close();
      for (const f of fakes) await f.close();
    }
  });
});

describe('a fanned-in listen across reloads', () => {
  it('a replica added by a reload joins the stream, one removed leaves it, and the stream stays open', async () => {
    const servers = [await startStatefulServer('x'), await startStatefulServer('y'), await startStatefulServer('z')];
    const route = (n: number) => ({ path: '/mcp', upstream: servers.slice(0, n).map((r, i) => ({ url: r.url, id: `s${i}` })), healthCheck: { interval: 0 } });
    const gw = await startTestGateway({ routes: [route(2)] });
    const reload = (n: number) => gw.gw.reload(buildConfig({ listen: [{ host: '127.0.0.1', port: gw.port }], routes: [route(n)] }, 'reload'));
    try {
      const l = await listen(gw.base, { toolsListChanged: true });
      await waitFor(() => servers[0]!.listens.open === 1 && servers[1]!.listens.open === 1, 5000, 'two legs');
      assert.equal(servers[2]!.listens.opened, 0);
      reload(3);
      await waitFor(() => servers[2]!.listens.open === 1, 5000, 'the added replica got a leg');
      servers[2]!.toolsChanged();
      await waitFor(() => listChanged(l) === 1, 3000, 'the added replica is heard');
      reload(1);
      await waitFor(() => servers[1]!.listens.open === 0 && servers[2]!.listens.open === 0, 5000, 'removed replicas lost their legs');
      await sleep(1100);
      servers[0]!.toolsChanged();
      await waitFor(() => listChanged(l) === 2, 3000, 'the remaining replica is still heard');
      assert.equal(l.ended(), 'open');
      l.close();
      await waitFor(() => servers.every((r) => r.listens.open === 0), 5000, 'no upstream listen left');
    } finally {
      await gw.close();
      for (const r of servers) await r.close();
    }
  });
});
