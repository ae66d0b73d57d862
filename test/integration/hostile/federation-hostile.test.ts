// A federated route with members that misbehave (issue 32, items 7-10 and 12): one that storms
// list_changed, one whose lists and calls never answer, one that answers a 10 MiB list, one that
// pages forever, one that asks the client for a password outside any call. Each sits beside a
// healthy member, and another route is served meanwhile. The members run in a process of their
// own (test/fixtures/hostile-member.ts), the gateway in this one, so what it holds is counted here.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { registerDemoV1 } from '../../../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../../../src/demo/upstream-kit.ts';
import { JSON_HEADERS, rpc, sleep, startTestGateway, waitFor, type TestGateway } from '../../helpers.ts';

const MEMBERS = new URL('../../fixtures/hostile-member.ts', import.meta.url).pathname;
const text = (r: unknown): string => ((r as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
const fds = (): number => readdirSync('/proc/self/fd').length;

async function legacy(url: string): Promise<Client> {
  const c = new Client({ name: 'hostile-fed', version: '1' }, { capabilities: { elicitation: {} } });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)), { prior: { kind: 'legacy' } } as never);
  return c;
}

describe('federation: a misbehaving member costs the others nothing (issue 32)', () => {
  let members: ChildProcess;
  let urls: Record<string, string>;
  let quick: UpstreamKit;
  let sluice: TestGateway;
  const stats = async (c: Client, tool: string): Promise<Record<string, number>> =>
    JSON.parse(text(await c.callTool({ name: tool, arguments: {} }))) as Record<string, number>;

  before(async () => {
    members = spawn(process.execPath, [MEMBERS], { stdio: ['ignore', 'pipe', 'inherit'] });
    urls = await new Promise<Record<string, string>>((resolve, reject) => {
      let out = '';
      members.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string) as Record<string, string>);
      });
      members.once('exit', () => reject(new Error('hostile members exited')));
    });
    quick = await startUpstreamKit({ name: 'quick', eras: 'legacy', registerV1: registerDemoV1, registerV2: () => undefined });
    const fed = (name: string) => ({ quick: { upstream: quick.url }, [name]: { upstream: urls[name] } });
    sluice = await startTestGateway({
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      federation: { listTimeout: '300ms', retryAfter: '500ms', notificationRate: 100, maxListBytes: '1MB' },
      routes: [
        { path: '/other', upstream: quick.url },
        ...['storm', 'hang', 'huge', 'pager', 'asker'].map((name) => ({ path: `/${name}`, servers: fed(name) })),
      ] as never,
    });
  });
  after(async () => {
    await sluice?.close();
    await quick?.close();
    members?.kill('SIGTERM');
  });

  it('a list_changed storm is coalesced and the member cut as unhealthy, named in the log; the rest serve on (item 7)', async () => {
    const c = await legacy(`${sluice.base}/storm`);
    let changed = 0;
    c.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    await c.listTools();
    const other = await legacy(`${sluice.base}/other`);
    await c.callTool({ name: 'storm__storm', arguments: { count: 50_000 } }).catch(() => undefined);
    await waitFor(() => sluice.logs.some((l) => l['server'] === 'storm' && String(l['err']).includes('federation.notificationRate')), 5000, 'the storm named in the log');
    assert.equal(text(await other.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'still here');
    assert.equal(text(await c.callTool({ name: 'quick__echo', arguments: { message: 'me too' } })), 'me too');
    await sleep(600);
    // 50,000 announced; the client heard a handful (one per 250 ms window, and one when the member is back).
    assert.ok(changed <= 8, `${changed} list_changed reached the client`);
    await Promise.all([c.close(), other.close()]);
  });

  it('lists to a member that never answers are abandoned upstream at listTimeout; it costs one wait, not one per list (item 9, 12)', async () => {
    const c = await legacy(`${sluice.base}/hang`);
    const before = fds();
    const timeouts = (): number => sluice.logs.filter((l) => l['server'] === 'hang' && String(l['msg']).includes('federation.listTimeout')).length;
    for (let i = 0; i < 40; i++) assert.ok((await c.listTools()).tools.some((t) => t.name === 'quick__echo'));
    assert.equal(timeouts(), 1, 'waited for the member once');
    // The member holds at most the one background list (and none once the client leaves).
    const open = await stats(c, 'hang__stats');
    assert.ok(open['listsOpen']! <= 1, JSON.stringify(open));
    assert.ok(open['listsStarted']! <= 4, JSON.stringify(open));
    // A call the client abandons ends upstream too.
    const gone = new AbortController();
    const call = c.callTool({ name: 'hang__never', arguments: {} }, { signal: gone.signal }).catch(() => 'abandoned');
    await sleep(200);
    assert.equal((await stats(c, 'hang__stats'))['callsOpen'], 1);
    gone.abort();
    assert.equal(await call, 'abandoned');
    await sleep(300);
    assert.equal((await stats(c, 'hang__stats'))['callsOpen'], 0);
    assert.ok(fds() - before < 20, `file descriptors ${before} → ${fds()}`);
    await c.close();
  });

  it('merged cursors are sealed and bound: a forged 5,000-server cursor and another session’s cursor are -32602 and ask nobody; paging forever costs one request a page (item 8)', async () => {
    const a = new ClientV1({ name: 'a', version: '1' });
    await a.connect(new TransportV1(new URL(`${sluice.base}/pager`)));
    const b = new ClientV1({ name: 'b', version: '1' });
    await b.connect(new TransportV1(new URL(`${sluice.base}/pager`)));
    const first = await a.listTools();
    assert.ok(first.nextCursor);
    const pages = async (): Promise<number> => JSON.parse(text(await a.callTool({ name: 'pager__stats', arguments: {} }))).pages as number;
    const asked = await pages();
    const forged = Buffer.from(JSON.stringify({ v: 1, rest: Array.from({ length: 5000 }, (_, i) => ['pager', String(i)]) })).toString('base64url');
    for (const [client, cursor] of [[a, forged], [b, first.nextCursor as string]] as const) {
      const err = await client.listTools({ cursor }).then(() => undefined, (e: { code?: number }) => e);
      assert.equal(err?.code, -32602);
    }
    assert.equal(await pages(), asked, 'nobody was asked for a cursor Sluice did not give this session');
    let cursor: string | undefined = first.nextCursor;
    for (let i = 0; i < 20 && cursor; i++) cursor = (await a.listTools({ cursor })).nextCursor;
    assert.ok(cursor, 'the member pages on');
    assert.equal(await pages(), asked + 20, 'one upstream request a page');
    await Promise.all([a.close(), b.close()]);
  });

  it('a list answer over federation.maxListBytes is refused naming the member; the list answers with the others (item 12)', async () => {
    const c = await legacy(`${sluice.base}/huge`);
    const tools = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('quick__echo') && !tools.some((t) => t.startsWith('huge__')), tools.slice(0, 5).join(' '));
    assert.ok(sluice.logs.some((l) => l['server'] === 'huge' && String(l['err']).includes('federation.maxListBytes')));
    await c.close();
  });

  it('a member’s request outside any call goes to the 2025 client’s GET stream, never into a call to another member; a 2026-07-28 caller’s is refused with the reason (item 10)', async () => {
    // 2025: the v1 client holds the GET stream; the call to the other member is made by hand so its stream can be read.
    const v1 = new ClientV1({ name: 'asked', version: '1' }, { capabilities: { elicitation: {} } });
    let asked = 0;
    v1.setRequestHandler(ElicitRequestSchema, async () => {
      asked++;
      return { action: 'accept', content: { pw: 'hunter2' } };
    });
    const transport = new TransportV1(new URL(`${sluice.base}/asker`));
    await v1.connect(transport);
    await sleep(200);
    await v1.callTool({ name: 'asker__ask_later', arguments: { ms: 300 } });
    const slow = await fetch(`${sluice.base}/asker`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'mcp-session-id': transport.sessionId as string, 'mcp-protocol-version': '2025-06-18' },
      body: rpc('tools/call', { name: 'quick__slow_count', arguments: { steps: 3, intervalMs: 300 }, _meta: { progressToken: 't' } }, 99),
    });
    const stream = await slow.text();
    assert.ok(stream.includes('counted to 3') && !stream.includes('elicitation/create'), stream);
    await waitFor(() => asked === 1, 5000, 'the question on the GET stream');
    assert.match(text(await v1.callTool({ name: 'asker__last_ask', arguments: {} })), /answered .*hunter2/);
    await v1.close();

    // A 2025 client that opens its GET stream late still gets the question once it does (the SDK's transport would drop it).
    const headers = { ...JSON_HEADERS, 'mcp-protocol-version': '2025-06-18' };
    const init = await fetch(`${sluice.base}/asker`, {
      method: 'POST',
      headers,
      body: rpc('initialize', { protocolVersion: '2025-06-18', capabilities: { elicitation: {} }, clientInfo: { name: 'late-get', version: '1' } }, 1),
    });
    const sid = init.headers.get('mcp-session-id') as string;
    await init.text();
    const session = { ...headers, 'mcp-session-id': sid };
    await (await fetch(`${sluice.base}/asker`, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    await (await fetch(`${sluice.base}/asker`, { method: 'POST', headers: session, body: rpc('tools/call', { name: 'asker__ask_later', arguments: { ms: 50 } }, 2) })).text();
    await sleep(400);
    const get = await fetch(`${sluice.base}/asker`, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
    const reader = (get.body as ReadableStream<Uint8Array>).getReader();
    let heard = '';
    while (!heard.includes('elicitation/create')) heard += new TextDecoder().decode((await reader.read()).value);
    const question = heard
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { id?: number; method?: string })
      .find((m) => m.method === 'elicitation/create');
    const id = question?.id;
    await (await fetch(`${sluice.base}/asker`, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id, result: { action: 'accept', content: { pw: 'late' } } }) })).text();
    await reader.cancel();
    await sleep(100);
    const last = await fetch(`${sluice.base}/asker`, { method: 'POST', headers: session, body: rpc('tools/call', { name: 'asker__last_ask', arguments: {} }, 3) });
    assert.match(await last.text(), /answered .*late/);

    // 2026-07-28: no GET stream; asked outside its call, the member hears why.
    const modern = new Client({ name: 'm', version: '1' }, { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    let modernAsked = 0;
    modern.setRequestHandler('elicitation/create', async () => {
      modernAsked++;
      return { action: 'accept', content: { pw: 'leaked' } };
    });
    // A caller with a credential: its upstream sessions are pooled for it across its requests.
    await modern.connect(new StreamableHTTPClientTransport(new URL(`${sluice.base}/asker`), { requestInit: { headers: { authorization: 'Bearer caller-m' } } }));
    await modern.callTool({ name: 'asker__ask_later', arguments: { ms: 200 } });
    const r = await modern.callTool({ name: 'quick__slow_count', arguments: { steps: 3, intervalMs: 250 } });
    assert.equal(text(r), 'counted to 3');
    assert.equal(modernAsked, 0, 'never asked inside a call to another member');
    await sleep(100);
    assert.match(text(await modern.callTool({ name: 'asker__last_ask', arguments: {} })), /refused: .*outside a call cannot reach a 2026-07-28 client/);
    await modern.close();
  });
});
