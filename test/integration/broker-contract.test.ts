// The broker contract (src/core/route-broker.ts, DESIGN §6): every kind of broker route keeps the
// relay's guarantees. One table of kinds (a stdio server, a federated route, a bridged HTTP
// server), each tried the same way: admission (limits.concurrency), the deadline of a silent call
// (timeouts.request: 504), drain (a call in flight at shutdown completes), close (nothing left
// behind: no child process, no upstream session), and the owner rule (anonymous callers never
// share upstream state).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import type { McpServer as McpServerV1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { childrenOf } from '../fixtures/process-table.ts';
import { JSON_HEADERS, rpc, send, sleep, startTestGateway, waitFor, type TestGateway } from '../helpers.ts';

const HOSTILE = new URL('../fixtures/hostile-stdio-server.ts', import.meta.url).pathname;
const stdio = { stdio: { command: process.execPath, args: [HOSTILE] } };

/** The hostile fixture's tools, on an HTTP server of the 2025 era (for the bridge). */
function hostileTools(server: McpServerV1): void {
  let remembered = '(nothing)';
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  server.registerTool('silent', { inputSchema: {} }, () => new Promise(() => undefined));
  server.registerTool('slow', { inputSchema: { ms: z.number() } }, async ({ ms }) => {
    await sleep(ms);
    return text(`slept ${ms}`);
  });
  server.registerTool('remember', { inputSchema: { value: z.string() } }, async ({ value }) => {
    remembered = value;
    return text('stored');
  });
  server.registerTool('recall', { inputSchema: {} }, async () => text(remembered));
}

const INIT = rpc('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'k', version: '1' } });
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'k', version: '1' },
};

interface Kind {
  name: string;
  route: (upstream: UpstreamKit) => Record<string, unknown>;
  /** A tool's name as the client calls it. */
  tool: (t: string) => string;
  /** How a client calls: a 2025 session (opened once) or stateless 2026-07-28 requests. */
  era: '2025' | '2026';
}

const KINDS: Kind[] = [
  { name: 'stdio', route: () => ({ path: '/k', upstream: stdio }), tool: (t) => t, era: '2025' },
  { name: 'federation', route: () => ({ path: '/k', servers: { h: { upstream: stdio } } }), tool: (t) => `h__${t}`, era: '2025' },
  { name: 'bridge', route: (up) => ({ path: '/k', upstream: up.url, bridge: 'auto' }), tool: (t) => t, era: '2026' },
];

for (const kind of KINDS) {
  describe(`broker contract: ${kind.name}`, () => {
    let upstream: UpstreamKit;
    let gw: TestGateway;
    let headers: Record<string, string>;
    before(async () => {
      upstream = await startUpstreamKit({ name: 'hostile-http', registerV1: hostileTools, registerV2: () => undefined, eras: 'legacy' });
      gw = await startTestGateway({
        limits: { concurrency: 3 },
        timeouts: { request: '1s' },
        shutdown: { drain: '5s' },
        routes: [kind.route(upstream) as never],
      });
      headers = { ...JSON_HEADERS };
      if (kind.era === '2025') {
        const r = await send(`${gw.base}/k`, { method: 'POST', headers, body: INIT });
        assert.equal(r.status, 200, r.body.toString());
        headers = { ...headers, 'mcp-session-id': String(r.headers['mcp-session-id']), 'mcp-protocol-version': '2025-06-18' };
        await send(`${gw.base}/k`, { method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
      }
    });
    after(async () => {
      await gw.close();
      await upstream.close();
    });

    const call = (tool: string, args: Record<string, unknown>, id: number, h = headers) => {
      const name = kind.tool(tool);
      const modern = kind.era === '2026';
      return send(`${gw.base}/k`, {
        method: 'POST',
        headers: modern ? { ...h, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name } : h,
        body: rpc('tools/call', { name, arguments: args, ...(modern ? { _meta: ENVELOPE } : {}) }, id),
      });
    };

    it('admission: over limits.concurrency, 503 SLUICE_ERR_OVERLOADED at once', async () => {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call('slow', { ms: 300 }, 100 + i)));
      const refused = answers.filter((a) => a.status === 503);
      assert.ok(answers.filter((a) => a.status === 200).length <= 3, answers.map((a) => a.status).join(','));
      assert.ok(refused.length >= 9, answers.map((a) => a.status).join(','));
      assert.match(refused[0]!.body.toString(), /SLUICE_ERR_OVERLOADED/);
    });

    it('deadline: a silent call ends at timeouts.request with 504', async () => {
      const started = Date.now();
      const r = await call('silent', {}, 200);
      assert.equal(r.status, 504, r.body.toString());
      assert.match(r.body.toString(), /SLUICE_ERR_UPSTREAM_TIMEOUT/);
      assert.ok(Date.now() - started < 3000);
    });

    it('owner rule: anonymous callers never share upstream state', async () => {
      if (kind.era === '2025') {
        // Another anonymous 2025 session: its own upstream session (or process).
        const other = await send(`${gw.base}/k`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
        const h2 = { ...JSON_HEADERS, 'mcp-session-id': String(other.headers['mcp-session-id']), 'mcp-protocol-version': '2025-06-18' };
        await call('remember', { value: `only-${kind.name}` }, 300);
        assert.doesNotMatch((await call('recall', {}, 301, h2)).body.toString(), new RegExp(`only-${kind.name}`));
        // Another caller cannot use a session token as its own without it: a made-up one is 404.
        const forged = await call('recall', {}, 302, { ...h2, 'mcp-session-id': 'not-a-token' });
        assert.equal(forged.status, 404);
      } else {
        await call('remember', { value: 'only-bridge' }, 300);
        assert.doesNotMatch((await call('recall', {}, 301)).body.toString(), /only-bridge/);
      }
    });

    it('drain and close: a call in flight at shutdown completes; nothing is left behind', async () => {
      const pending = call('slow', { ms: 600 }, 400);
      await sleep(150);
      await gw.close();
      const r = await pending;
      assert.equal(r.status, 200, r.body.toString());
      assert.match(r.body.toString(), /slept 600/);
      await waitFor(() => childrenOf(process.pid).length === 0, 5000, 'no child process left');
      await waitFor(() => upstream.sessions.size === 0, 5000, `no upstream session left (${upstream.sessions.size})`);
    });
  });
}
