// Per-tool policy: denied calls answered with a JSON-RPC error and never forwarded, list answers
// (JSON and SSE, sessionful and 2026-07-28) filtered to what the caller may use, rules by
// principal and scope through resource-server API keys.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { buildConfig } from '../../src/config/load.ts';
import { hashApiKey } from '../../src/security/bearer.ts';
import { registerDemoV1, registerDemoV2 } from '../../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { accessLines, JSON_HEADERS, send, startTestGateway, type TestGateway } from '../helpers.ts';

const V = '2026-07-28';
const meta = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'policy-test', version: '1' } };

describe('per-tool policy', () => {
  let upstream: UpstreamKit;
  let sluice: TestGateway;
  let upstreamPosts = 0;
  const names: string[] = [];

  before(async () => {
    upstream = await startUpstreamKit({ name: 'policy', registerV1: registerDemoV1, registerV2: registerDemoV2, onRequest: (req) => void (req.method === 'POST' && upstreamPosts++) });
    sluice = await startTestGateway({
      routes: [
        { path: '/mcp', upstream: upstream.url, policy: { rules: [{ effect: 'deny', methods: ['tools/call'], names: ['slow_*'] }] } },
        { path: '/legacy', upstream: `http://127.0.0.1:${upstream.port}/`, policy: { rules: [{ effect: 'deny', methods: ['tools/call'], names: ['slow_*'] }] } },
        {
          path: '/team',
          upstream: upstream.url,
          auth: {
            mode: 'resource-server',
            resource: 'http://127.0.0.1/team',
            apiKeys: [
              { name: 'ops-1', sha256: hashApiKey('key-ops'), scopes: ['admin'] },
              { name: 'dev-1', sha256: hashApiKey('key-dev') },
            ],
          },
          policy: {
            default: 'deny',
            rules: [
              { effect: 'allow', methods: ['tools/call'], names: ['echo'] },
              { effect: 'allow', methods: ['tools/call'], names: ['add'], scopes: ['admin'] },
              { effect: 'allow', methods: ['tools/call'], names: ['slow_count'], principals: ['ops-*'] },
            ],
          },
        },
      ],
    });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
  });

  async function connect(path: string, key?: string): Promise<Client> {
    const client = new Client({ name: 'policy-test', version: '1' });
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    await client.connect(new StreamableHTTPClientTransport(new URL(`${sluice.base}${path}`), { requestInit: { headers } }));
    return client;
  }

  it('hides denied tools from tools/list and refuses their calls without an upstream request', async () => {
    const client = await connect('/mcp');
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    names.push(...tools);
    assert.deepEqual(tools, ['add', 'echo']);
    const before = upstreamPosts;
    await assert.rejects(client.callTool({ name: 'slow_count', arguments: { count: 1 } }), (err: { code?: number; message: string }) => err.code === -32003 && /Forbidden by policy: tools\/call slow_count/.test(err.message));
    assert.equal(upstreamPosts, before, 'the denied call never reached the upstream');
    const ok = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.equal((ok.content as { text: string }[])[0]?.text, '5');
    await client.close();
    const denied = accessLines(sluice.logs).find((l) => l['outcome'] === 'SLUICE_ERR_POLICY_DENIED');
    assert.equal(denied?.['security'], 'policy-denied');
    assert.equal(denied?.['rpcName'], 'slow_count');
  });

  it('decides by scope and principal (default deny)', async () => {
    const ops = await connect('/team', 'key-ops');
    const dev = await connect('/team', 'key-dev');
    assert.deepEqual((await ops.listTools()).tools.map((t) => t.name).sort(), ['add', 'echo', 'slow_count']);
    assert.deepEqual((await dev.listTools()).tools.map((t) => t.name).sort(), ['echo']);
    await assert.rejects(dev.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), /Forbidden by policy/);
    assert.equal(((await ops.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).content as { text: string }[])[0]?.text, '2');
    // Under default deny the protocol's plumbing still passes.
    await dev.ping();
    await ops.close();
    await dev.close();
  });

  it('reads 2026-07-28 names only after the header-vs-body check, and filters stateless lists', async () => {
    const post = (headers: Record<string, string>, body: unknown) => send(`${sluice.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-protocol-version': V, ...headers }, body: JSON.stringify(body) });
    const call = (name: string) => ({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: { count: 1 }, _meta: meta } });
    // The header claims an allowed tool, the body calls a denied one: the mismatch is refused first.
    const lie = await post({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, call('slow_count'));
    assert.equal(lie.status, 400);
    assert.equal((JSON.parse(lie.body.toString()) as { error: { code: number } }).error.code, -32020);
    const denied = await post({ 'mcp-method': 'tools/call', 'mcp-name': 'slow_count' }, call('slow_count'));
    assert.equal(denied.status, 200);
    assert.deepEqual(JSON.parse(denied.body.toString()).error.code, -32003);
    const list = await post({ 'mcp-method': 'tools/list' }, { jsonrpc: '2.0', id: 10, method: 'tools/list', params: { _meta: meta } });
    assert.equal(list.status, 200, list.body.toString());
    const text = list.body.toString();
    const json = String(list.headers['content-type']).startsWith('text/event-stream') ? text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)) as { id?: number; result?: { tools: { name: string }[] } }).find((m) => m.id === 10) : JSON.parse(text);
    assert.deepEqual(json.result.tools.map((t: { name: string }) => t.name).sort(), ['add', 'echo']);
  });

  it('filters HTTP+SSE answers on the stream and refuses denied posts with 403', async () => {
    const client = new Client({ name: 'legacy', version: '1' });
    await client.connect(new SSEClientTransport(new URL(`${sluice.base}/legacy/sse`)));
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['add', 'echo']);
    const before = upstreamPosts;
    await assert.rejects(client.callTool({ name: 'slow_count', arguments: { count: 1 } }), /403/);
    assert.equal(upstreamPosts, before);
    await client.close();
  });

  it('takes a reloaded policy for new requests', async () => {
    const current = sluice.gw.ctx.config;
    const routes = current.routes.map((r) => (r.path === '/mcp' ? { ...r, upstream: r.upstream.map((u) => u.url), policy: { default: 'allow' as const, rules: [{ effect: 'deny' as const, names: ['slow_*', 'add'] }] } } : { ...r, upstream: r.upstream.map((u) => u.url) }));
    sluice.gw.reload(buildConfig({ listen: [{ host: '127.0.0.1', port: 0 }], routes } as never, 'test'));
    const client = await connect('/mcp');
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['echo']);
    await client.close();
  });
});
