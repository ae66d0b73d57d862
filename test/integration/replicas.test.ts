// Routes with several replicas in one gateway: balancing of new sessions, sessions pinned to
// their owner, passive ejection and the quick 503, active health checks, draining and removal
// by reload, key rotation by reload, and the replica in the access log.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { newKeyText } from '../../src/session/key-ring.ts';
import { buildConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { accessLines, freePort, JSON_HEADERS, rpc, send, startDemoUpstream, startFakeUpstream, startTestGateway, upstreamSessionOf, waitFor, type TestGateway, RPC_OK } from '../helpers.ts';

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });

async function initialize(gw: TestGateway): Promise<string> {
  const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
  assert.equal(r.status, 200, r.body.toString());
  return r.headers['mcp-session-id'] as string;
}

function listTools(gw: TestGateway, token: string): Promise<number> {
  return send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': token, 'mcp-protocol-version': '2025-11-25' }, body: rpc('tools/list') }).then((r) => r.status);
}

/** Which of the upstreams holds the session behind the token. */
function ownerOf(gw: TestGateway, token: string, ups: UpstreamKit[]): number {
  const id = upstreamSessionOf(gw, token);
  return ups.findIndex((u) => u.sessions.has(id));
}

function reload(gw: TestGateway, input: Partial<ConfigInput> & Pick<ConfigInput, 'routes'>): void {
  gw.gw.reload(buildConfig({ listen: [{ host: '127.0.0.1', port: gw.port }], ...input }, 'reload'));
}

describe('routes with several replicas', () => {
  it('spreads new sessions round robin, keeps each session on its owner, and logs the replica', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream(), startDemoUpstream()]);
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: ups.map((u, i) => ({ url: u.url, id: `r${i}` })) }] });
    try {
      const tokens = [];
      for (let i = 0; i < 6; i++) tokens.push(await initialize(gw));
      assert.deepEqual(tokens.map((t) => ownerOf(gw, t, ups)), [0, 1, 2, 0, 1, 2]);
      for (const t of tokens) for (let k = 0; k < 3; k++) assert.equal(await listTools(gw, t), 200);
      const lines = accessLines(gw.logs).filter((l) => l['rpcMethod'] === 'tools/list');
      assert.equal(lines.length, 18);
      for (const l of lines) assert.match(String(l['replica']), /^r[012]$/);
      assert.equal(new Set(lines.map((l) => l['replica'])).size, 3);
    } finally {
      await gw.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('least-outstanding sends new work to the replica with fewer streams open', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream()]);
    const gw = await startTestGateway({ routes: [{ path: '/mcp', balance: 'least-outstanding', upstream: ups.map((u) => u.url) }] });
    const ac = new AbortController();
    try {
      const first = await initialize(gw);
      const busy = ownerOf(gw, first, ups);
      // Hold a GET stream open on the first session's replica.
      const stream = await fetch(`${gw.base}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': first, 'mcp-protocol-version': '2025-11-25' }, signal: ac.signal });
      assert.equal(stream.status, 200);
      for (let i = 0; i < 3; i++) assert.notEqual(ownerOf(gw, await initialize(gw), ups), busy);
    } finally {
      ac.abort();
      await gw.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('moves a new session past a replica that refuses connections; a session on it gets 404; the last replica is never ejected', async () => {
    const up = await startDemoUpstream();
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    const gw = await startTestGateway({
      routes: [{ path: '/mcp', upstream: [{ url: dead, id: 'dead' }, { url: up.url, id: 'live' }], healthCheck: { interval: 0 }, ejection: { consecutiveFailures: 2, duration: '20s' } }],
    });
    try {
      // Round robin starts at the dead one: the initialize still lands on the live one.
      const token = await initialize(gw);
      assert.equal(ownerOf(gw, token, [up]), 0);
      assert.equal(accessLines(gw.logs).at(-1)?.['replica'], 'live');
      // A session sealed for the dead replica is over: 404, never 502.
      const ring = gw.gw.ctx.sessions;
      const { sealSession } = await import('../../src/session/token.ts');
      const orphan = sealSession(ring, { route: '/mcp', replica: 'dead', upstreamSession: 'x', principal: undefined, issuedAt: 1 });
      assert.equal(await listTools(gw, orphan), 404);
      await waitFor(() => gw.logs.some((l) => l['msg'] === 'replica ejected after consecutive failures'), 2000, 'ejection log');
      assert.equal(await listTools(gw, orphan), 404, 'ejected owner, still refusing, with a live replica to start over on: 404');
      await up.close();
      // The live replica is now the last one that takes work: never ejected, however often it
      // fails, so the route is back the moment it is.
      for (let i = 0; i < 4; i++) {
        const gone = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
        assert.equal(gone.status, 502, 'the last replica refused: its connect error stands');
      }
      assert.equal(gw.logs.filter((l) => l['msg'] === 'replica ejected after consecutive failures').length, 1, 'only the dead one was ejected');
    } finally {
      await gw.close();
    }
  });

  it('with ejection.on5xx, ejects a replica after consecutive 5xx answers and takes it back after the ejection time', async () => {
    let failing = true;
    const bad = await startFakeUpstream((_req, res) => (failing ? res.writeHead(500).end('boom') : res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK)));
    const good = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: [`${bad.url}/mcp`, `${good.url}/mcp`], healthCheck: { interval: 0 }, ejection: { consecutiveFailures: 2, duration: '400ms', on5xx: true } }] });
    const stateless = { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' };
    try {
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await send(`${gw.base}/mcp`, { method: 'POST', headers: stateless, body: rpc('tools/list') })).status);
      assert.deepEqual(statuses, [500, 200, 500, 200, 200, 200, 200, 200], 'two 5xx in a row from one replica eject it');
      failing = false;
      await new Promise((r) => setTimeout(r, 450));
      const before = bad.requests.length;
      for (let i = 0; i < 4; i++) await send(`${gw.base}/mcp`, { method: 'POST', headers: stateless, body: rpc('tools/list') });
      assert.equal(bad.requests.length - before, 2, 'back in rotation after the ejection time');
    } finally {
      await gw.close();
      await bad.close();
      await good.close();
    }
  });

  it('active health checks take a replica that stops listening out of rotation and back when it returns', async () => {
    const up = await startDemoUpstream();
    const flaky = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const port = flaky.port;
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: [{ url: `${flaky.url}/mcp`, id: 'flaky' }, { url: up.url, id: 'steady' }], healthCheck: { interval: '100ms', timeout: '100ms', unhealthyThreshold: 2 } }] });
    try {
      await flaky.close();
      await waitFor(() => gw.logs.some((l) => l['msg'] === 'replica down: health checks failed' && l['replica'] === 'flaky'), 3000, 'replica down');
      for (let i = 0; i < 4; i++) await initialize(gw);
      const inits = accessLines(gw.logs).filter((l) => l['rpcMethod'] === 'initialize');
      assert.ok(inits.every((l) => l['replica'] === 'steady' && l['status'] === 200), JSON.stringify(inits));
      const back = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK), port);
      try {
        await waitFor(() => gw.logs.some((l) => l['msg'] === 'replica up' && l['replica'] === 'flaky'), 3000, 'replica up');
      } finally {
        await back.close();
      }
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('draining by reload: no new sessions there, its sessions and streams go on until the drain deadline, then 404 and the stream ends', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream()]);
    const route = (draining: boolean) => ({ path: '/mcp', drainTimeout: '600ms', upstream: [{ url: ups[0]!.url, id: 'a', draining }, { url: ups[1]!.url, id: 'b' }] });
    const gw = await startTestGateway({ routes: [route(false)] });
    try {
      const onA = await initialize(gw);
      assert.equal(ownerOf(gw, onA, ups), 0);
      const stream = await fetch(`${gw.base}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': onA, 'mcp-protocol-version': '2025-11-25' } });
      assert.equal(stream.status, 200);
      const ended = stream.text();
      reload(gw, { routes: [route(true)] });
      for (let i = 0; i < 3; i++) assert.equal(ownerOf(gw, await initialize(gw), ups), 1, 'new sessions avoid the draining replica');
      assert.equal(await listTools(gw, onA), 200, 'its session continues while draining');
      const body = await ended; // ended by the deadline
      assert.match(body, /retry: \d+/);
      assert.equal(await listTools(gw, onA), 404, 'after the deadline the session is over');
      reload(gw, { routes: [route(false)] });
      assert.equal(ownerOf(gw, await initialize(gw), ups), 0, 'undrained: it takes new sessions again');
    } finally {
      await gw.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('rotates keys by reload: old tokens route while their key is listed, and get 404 once it is removed', async () => {
    const up = await startDemoUpstream();
    const [k1, k2] = [newKeyText(), newKeyText()];
    const routes = [{ path: '/mcp', upstream: up.url }];
    const gw = await startTestGateway({ routes, sessions: { keys: [k1] } });
    try {
      const old = await initialize(gw);
      reload(gw, { routes, sessions: { keys: [k2, k1] } });
      assert.equal(await listTools(gw, old), 200, 'old key still listed');
      const fresh = await initialize(gw);
      reload(gw, { routes, sessions: { keys: [k2] } });
      assert.equal(await listTools(gw, fresh), 200, 'sealed with the new key');
      assert.equal(await listTools(gw, old), 404, 'old key removed');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('HTTP+SSE: the sealed sessionId routes POSTs to the stream\'s replica, through another gateway with the same keys too', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream()]);
    const keys = [newKeyText()];
    const routes = [{ path: '/', upstream: ups.map((u) => u.url.replace(/\/mcp$/, '/')) }];
    const a = await startTestGateway({ routes, sessions: { keys } });
    const b = await startTestGateway({ routes, sessions: { keys } });
    const streams: AbortController[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const ac = new AbortController();
        streams.push(ac);
        const res = await fetch(`${a.base}/sse`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const dec = new TextDecoder();
        let text = '';
        while (!/data: (\S+)\n/.test(text)) text += dec.decode((await reader.read()).value);
        const endpoint = /data: (\S+)\n/.exec(text)?.[1] ?? '';
        assert.match(endpoint, /^\/messages\?sessionId=[A-Za-z0-9_-]{60,}$/, 'a sealed token, not the upstream uuid');
        const gw = i % 2 === 0 ? a : b;
        const post = await send(`${gw.base}${endpoint}`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list', {}, 40 + i) });
        assert.equal(post.status, 202);
        while (!text.includes(`"id":${40 + i}`)) text += dec.decode((await reader.read()).value);
        assert.match(text, /"tools":\[/);
      }
      const replicas = accessLines([...a.logs, ...b.logs]).filter((l) => l['method'] === 'POST').map((l) => l['replica']);
      assert.equal(new Set(replicas).size, 2, 'streams spread over both replicas, each POST followed its stream');
    } finally {
      for (const ac of streams) ac.abort();
      await a.close();
      await b.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('a session request whose connection breaks before an answer: 502 while the owner is there, 503 + Retry-After (not 404) when the only replica is gone', async () => {
    const { sealSession } = await import('../../src/session/token.ts');
    let mode: 'reset' | 'die' = 'reset';
    const fake = await startFakeUpstream((req, res) => {
      if (mode === 'die') void fake.close();
      req.socket.destroy();
      void res;
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: [{ url: `${fake.url}/mcp`, id: 'only' }], healthCheck: { interval: 0 } }] });
    try {
      const token = sealSession(gw.gw.ctx.sessions, { route: '/mcp', replica: 'only', upstreamSession: 's1', principal: undefined, issuedAt: 1 });
      assert.equal(await listTools(gw, token), 502, 'the replica is alive: the broken exchange is an upstream error');
      mode = 'die';
      assert.equal(await listTools(gw, token), 503, 'the only replica died with the request: no one else could take a new session, so the session waits');
    } finally {
      await gw.close();
      await fake.close().catch(() => undefined);
    }
  });
});
