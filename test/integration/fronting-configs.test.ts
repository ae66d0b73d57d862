// The generated fronting configs, run by the real programs (Debian's nginx, HAProxy and Caddy)
// in front of the official-SDK demo upstream on loopback: SSE progress arrives as it is sent,
// nothing is compressed, sessions work end to end, the CORS preflight allows the MCP headers and
// responses expose Mcp-Session-Id. With two replicas, HAProxy learns affinity from the
// initialize response (sessions spread and never lost); nginx and Caddy keep every session on
// the first replica, as their comments say.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startFront } from '../fixtures/front-proxy.ts';
import { send, startDemoUpstream, startFakeUpstream } from '../helpers.ts';

async function session(url: string): Promise<Client> {
  const client = new Client({ name: 'front', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

for (const kind of ['nginx', 'haproxy', 'caddy'] as const) {
  describe(`sluice config ${kind}, run by the real ${kind}`, () => {
    it('is accepted by the program and carries an SDK session with SSE progress unbuffered and uncompressed', async () => {
      const up = await startDemoUpstream();
      const front = await startFront(kind, [up]);
      try {
        const client = await session(front.url);
        const t0 = performance.now();
        const arrivals: number[] = [];
        const r = await client.callTool({ name: 'slow_count', arguments: { steps: 3, intervalMs: 300 } }, undefined, { onprogress: () => void arrivals.push(performance.now() - t0) });
        const done = performance.now() - t0;
        assert.deepEqual(r.content, [{ type: 'text', text: 'counted to 3' }]);
        assert.equal(arrivals.length, 3);
        // Unbuffered: each progress event arrives about when it is sent, not all at the end.
        assert.ok(done - (arrivals[0] as number) >= 450, `first progress at ${arrivals[0]} ms, result at ${done} ms`);
        await client.close();
        // No compression on SSE, even when the client offers gzip.
        const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
        const raw = await send(front.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'gzip' }, body: init });
        assert.equal(raw.status, 200);
        assert.match(String(raw.headers['content-type']), /text\/event-stream/);
        assert.equal(raw.headers['content-encoding'], undefined);
        assert.ok(raw.headers['mcp-session-id'], 'Mcp-Session-Id comes through');
        assert.match(String(raw.headers['access-control-expose-headers']), /Mcp-Session-Id/i);
        // CORS preflight allows the MCP request headers.
        const pre = await send(front.url, {
          method: 'OPTIONS',
          headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id, mcp-protocol-version, mcp-param-region' },
        });
        assert.equal(pre.status, 204);
        const allowed = String(pre.headers['access-control-allow-headers']).toLowerCase();
        for (const h of ['mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'authorization', 'mcp-param-region']) assert.ok(allowed.includes(h), `${h} in ${allowed}`);
        assert.equal(pre.headers['access-control-allow-origin'], '*');
      } finally {
        await front.stop();
        await up.close();
      }
    });

    it('routes OAuth discovery: the 401 challenge and the protected-resource metadata reach the client', async () => {
      const doc = JSON.stringify({ resource: 'https://mcp.example.com/mcp', authorization_servers: ['https://login.example.com'] });
      const fake = await startFakeUpstream((req, res) => {
        if (req.url === '/.well-known/oauth-protected-resource/mcp' || req.url === '/.well-known/oauth-protected-resource') return void res.writeHead(200, { 'content-type': 'application/json' }).end(doc);
        res.writeHead(401, { 'www-authenticate': 'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"', 'content-type': 'application/json' }).end('{}');
      });
      const front = await startFront(kind, [{ url: `${fake.url}/mcp` }]);
      try {
        const origin = new URL(front.url).origin;
        const denied = await send(front.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', origin: 'https://app.example' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
        assert.equal(denied.status, 401);
        assert.match(String(denied.headers['www-authenticate']), /resource_metadata=/);
        assert.match(String(denied.headers['access-control-expose-headers']), /WWW-Authenticate/i);
        // Paths below the MCP path (HTTP+SSE's /sse and /messages) reach the upstream too.
        assert.equal((await send(`${front.url}/sse`)).status, 401);
        for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
          const meta = await send(`${origin}${path}`, { headers: { origin: 'https://app.example', 'mcp-protocol-version': '2025-11-25' } });
          assert.equal(meta.status, 200, path);
          assert.equal(meta.body.toString(), doc);
          assert.ok(meta.headers['access-control-allow-origin'], `${path}: readable cross-origin`);
        }
      } finally {
        await front.stop();
        await fake.close();
      }
    });

    it('passes each SSE event on as it is sent, from an upstream that does not ask for it (no X-Accel-Buffering)', async () => {
      const fake = await startFakeUpstream(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (let i = 1; i <= 3; i++) {
          res.write(`id: ${i}\ndata: {"n":${i}}\n\n`);
          await new Promise((r) => setTimeout(r, 300));
        }
        res.end();
      });
      const front = await startFront(kind, [{ url: `${fake.url}/mcp` }]);
      try {
        const t0 = performance.now();
        const res = await fetch(front.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'accept-encoding': 'gzip' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
        assert.equal(res.headers.get('content-encoding'), null);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const dec = new TextDecoder();
        const arrivals: number[] = [];
        let text = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const before = (text.match(/\n\n/g) ?? []).length;
          text += dec.decode(value);
          for (let k = before; k < (text.match(/\n\n/g) ?? []).length; k++) arrivals.push(performance.now() - t0);
        }
        assert.equal(arrivals.length, 3, text);
        assert.ok((arrivals[2] as number) - (arrivals[0] as number) >= 450, `events arrived at ${arrivals.map((a) => a.toFixed(0)).join(', ')} ms`);
      } finally {
        await front.stop();
        await fake.close();
      }
    });

    it('with two replicas, no session is lost', async () => {
      const ups = [await startDemoUpstream(), await startDemoUpstream()];
      const front = await startFront(kind, ups);
      try {
        const clients = [];
        for (let i = 0; i < 6; i++) clients.push(await session(front.url));
        for (const c of clients) {
          for (let k = 0; k < 3; k++) assert.deepEqual((await c.callTool({ name: 'add', arguments: { a: k, b: 1 } })).content, [{ type: 'text', text: String(k + 1) }]);
        }
        const spread = ups.map((u) => u.sessions.size);
        if (kind === 'haproxy') assert.deepEqual(spread, [3, 3], 'round robin, with affinity learned from the initialize response');
        else assert.deepEqual(spread, [6, 0], 'first replica active, the other a backup');
        await Promise.all(clients.map((c) => c.close()));
      } finally {
        await front.stop();
        await Promise.all(ups.map((u) => u.close()));
      }
    });
  });
}

describe('sluice config (command line)', () => {
  const BIN = new URL('../../bin/sluice.js', import.meta.url).pathname;
  it('prints each config and refuses bad input with usage', () => {
    for (const kind of ['nginx', 'haproxy', 'caddy', 'traefik']) {
      const r = spawnSync(process.execPath, [BIN, 'config', kind, '--upstream', 'http://127.0.0.1:3001/mcp', '--upstream', 'http://127.0.0.1:3002/mcp'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Generated by `sluice config/);
      if (kind !== 'haproxy') assert.match(r.stdout, /sluice serve --listen 127\.0\.0\.1:8081 --upstream http:\/\/127\.0\.0\.1:3001\/mcp --upstream http:\/\/127\.0\.0\.1:3002\/mcp/, `${kind} recommends Sluice for affinity`);
    }
    const bad = spawnSync(process.execPath, [BIN, 'config', 'nginx', '--upstream', 'http://127.0.0.1:3001/a', '--upstream', 'http://127.0.0.1:3002/b'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /same scheme and path/);
    assert.equal(spawnSync(process.execPath, [BIN, 'config', 'apache', '--upstream', 'http://127.0.0.1:1/'], { encoding: 'utf8' }).status, 2);
  });
});
