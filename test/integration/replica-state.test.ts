// 2026-07-28 state that lives on one server process, through Sluice on a route of two replicas
// (issue 18 parts 1 and 2): multi-round calls (requestState, per-process key) and Tasks-extension
// task ids (per-process store) stick to their replica with no shared store, across Sluice
// processes sharing a key ring; a tampered value is refused with no upstream call.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { newKeyText } from '../../src/session/key-ring.ts';
import { startStatefulServer, TASKS_EXTENSION, type StatefulServer } from '../fixtures/stateful-modern-server.ts';
import { accessLines, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway } from '../helpers.ts';

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} }, sampling: {}, extensions: { [TASKS_EXTENSION]: {} } },
};

interface RpcAnswer {
  status: number;
  body: { result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

async function call(base: string, id: number, method: string, params: Record<string, unknown>, name?: string): Promise<RpcAnswer> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': method,
  };
  if (name !== undefined) headers['mcp-name'] = name;
  const res = await fetch(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: META } }) });
  const text = await res.text();
  // JSON, or an SSE stream whose last data line is the answer.
  const json = res.headers.get('content-type')?.includes('text/event-stream') ? (text.match(/^data: (.*)$/gm) ?? []).at(-1)?.slice(6) ?? '{}' : text;
  return { status: res.status, body: JSON.parse(json) as RpcAnswer['body'] };
}

function tamper(token: string): string {
  const i = Math.floor(token.length / 2);
  return token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
}

const calls = (s: StatefulServer, method: string): number => s.requests.get(method) ?? 0;

describe('2026-07-28 requestState and tasks across two replicas', () => {
  let a: StatefulServer;
  let b: StatefulServer;
  let one: TestGateway;
  let two: TestGateway;
  before(async () => {
    a = await startStatefulServer('replica-a');
    b = await startStatefulServer('replica-b');
    const keys = [newKeyText()];
    const route = { path: '/mcp', upstream: [{ url: a.url, id: 'a' }, { url: b.url, id: 'b' }], balance: 'round-robin' as const, healthCheck: { interval: 0 } };
    one = await startTestGateway({ routes: [route], sessions: { keys } });
    two = await startTestGateway({ routes: [route], sessions: { keys } });
  });
  after(async () => {
    await one.close();
    await two.close();
    await a.close();
    await b.close();
  });

  it('50 elicitation and 50 sampling round trips with the official SDK client all succeed, on both replicas', async () => {
    const client = new Client({ name: 'mrtr', version: '1' }, { capabilities: { elicitation: { form: {} }, sampling: {} }, versionNegotiation: { mode: 'auto' } });
    client.setRequestHandler('elicitation/create', async (req) => {
      const content: Record<string, string | boolean> = req.params.message.startsWith('Your') ? { name: 'ann' } : { sure: true };
      return { action: 'accept', content };
    });
    client.setRequestHandler('sampling/createMessage', async () => ({ role: 'assistant', content: { type: 'text', text: 'short' }, model: 'm' }));
    await client.connect(new StreamableHTTPClientTransport(new URL(`${one.base}/mcp`)));
    const answers: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await client.callTool({ name: 'ask_name', arguments: {} });
      answers.push((r.content as { text: string }[])[0]?.text ?? JSON.stringify(r));
    }
    for (let i = 0; i < 50; i++) {
      const r = await client.callTool({ name: 'summarize', arguments: { text: `text ${i}` } });
      answers.push((r.content as { text: string }[])[0]?.text ?? JSON.stringify(r));
    }
    await client.close();
    const elicited = answers.slice(0, 50);
    const sampled = answers.slice(50);
    assert.deepEqual(elicited.filter((t) => !/^hello ann from replica-[ab]$/.test(t)), [], 'every elicitation call completed');
    assert.deepEqual(sampled.filter((t) => !/^summary from replica-[ab]: short$/.test(t)), [], 'every sampling call completed');
    // Strict alternation would have sent every retry to the other replica: both served calls.
    assert.ok(elicited.some((t) => t.endsWith('replica-a')) && elicited.some((t) => t.endsWith('replica-b')), 'calls ran on both replicas');
    // Three rounds per elicitation call and two per sampling call, each on its call's replica.
    assert.equal(calls(a, 'tools/call') + calls(b, 'tools/call'), 50 * 3 + 50 * 2);
  });

  it('a requestState reaches the client sealed, and a tampered one is refused with no upstream call', async () => {
    const first = await call(one.base, 1, 'tools/call', { name: 'ask_name', arguments: {} }, 'ask_name');
    assert.equal(first.body.result?.['resultType'], 'input_required');
    const state = first.body.result?.['requestState'] as string;
    assert.match(state, /^[A-Za-z0-9_-]+$/, 'a Sluice token, not the SDK codec\'s "v1." form');
    assert.ok(!state.startsWith('v1.'));
    const before = calls(a, 'tools/call') + calls(b, 'tools/call');
    const responses = { name: { action: 'accept', content: { name: 'ann' } } };
    const bad = await call(two.base, 2, 'tools/call', { name: 'ask_name', arguments: {}, inputResponses: responses, requestState: tamper(state) }, 'ask_name');
    assert.equal(bad.status, 200);
    assert.equal(bad.body.error?.code, -32602);
    assert.equal(bad.body.error?.message.startsWith('Invalid or expired requestState'), true);
    assert.equal(bad.body.error?.data?.['reason'], 'invalid_request_state');
    const foreign = await call(two.base, 3, 'tools/call', { name: 'ask_name', arguments: {}, inputResponses: responses, requestState: 'v1.not-sealed-by-sluice.x' }, 'ask_name');
    assert.equal(foreign.body.error?.code, -32602);
    assert.equal(calls(a, 'tools/call') + calls(b, 'tools/call'), before, 'no upstream request for either');
    // The real token works through the other Sluice process, on the replica that minted it.
    const good = await call(two.base, 4, 'tools/call', { name: 'ask_name', arguments: {}, inputResponses: responses, requestState: state }, 'ask_name');
    assert.equal(good.body.result?.['resultType'], 'input_required', JSON.stringify(good.body));
    const refused = accessLines(two.logs).filter((l) => l['outcome'] === 'SLUICE_ERR_REQUEST_STATE_INVALID');
    assert.equal(refused.length, 2, 'the access log names the refusal');
  });

  it('20 tasks created and polled to completion through alternating Sluice processes all succeed', async () => {
    const gateways = [one, two];
    const created: { taskId: string; via: number }[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await call(gateways[i % 2]!.base, 100 + i, 'tools/call', { name: 'slow_job', arguments: { ms: 50 + (i % 5) * 20 } }, 'slow_job');
      assert.equal(r.body.result?.['resultType'], 'task', JSON.stringify(r.body));
      created.push({ taskId: r.body.result?.['taskId'] as string, via: i % 2 });
    }
    assert.equal(new Set(created.map((c) => c.taskId)).size, 20);
    assert.ok(calls(a, 'tools/call') > 0 && calls(b, 'tools/call') > 0);
    const done: string[] = [];
    let polls = 0;
    for (const [i, t] of created.entries()) {
      for (let round = 0; ; round++) {
        // Polled through the Sluice process that did not create it, then alternately.
        const gw = gateways[(t.via + 1 + round) % 2]!;
        const r = await call(gw.base, 1000 + polls++, 'tasks/get', { taskId: t.taskId }, t.taskId);
        assert.equal(r.body.error, undefined, `task ${i}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.result?.['taskId'], t.taskId, 'the same sealed id comes back');
        if (r.body.result?.['status'] === 'completed') {
          done.push(((r.body.result['result'] as { content: { text: string }[] }).content[0]?.text) ?? '');
          break;
        }
        assert.ok(round < 50, `task ${i} never completed`);
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    assert.equal(done.length, 20);
    assert.ok(done.every((d) => /^job done by replica-[ab]$/.test(d)));
    assert.equal(calls(a, 'tasks/get') + calls(b, 'tasks/get'), polls, 'every poll reached the replica holding its task');
  });

  it('a tampered task id is refused with no upstream call; Mcp-Name must name the task', async () => {
    const r = await call(one.base, 7, 'tools/call', { name: 'slow_job', arguments: { ms: 5000 } }, 'slow_job');
    const taskId = r.body.result?.['taskId'] as string;
    const before = calls(a, 'tasks/get') + calls(b, 'tasks/get') + calls(a, 'tasks/cancel') + calls(b, 'tasks/cancel');
    const bad = await call(two.base, 8, 'tasks/get', { taskId: tamper(taskId) }, tamper(taskId));
    assert.equal(bad.body.error?.code, -32602);
    assert.match(bad.body.error?.message ?? '', /^Invalid or nonexistent taskId/);
    const mismatch = await call(two.base, 9, 'tasks/get', { taskId }, 'some-other-task');
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.error?.code, -32020);
    assert.equal(calls(a, 'tasks/get') + calls(b, 'tasks/get') + calls(a, 'tasks/cancel') + calls(b, 'tasks/cancel'), before);
    const cancel = await call(two.base, 10, 'tasks/cancel', { taskId }, taskId);
    assert.deepEqual(cancel.body.result?.['resultType'], 'complete', JSON.stringify(cancel.body));
    const after = await call(one.base, 11, 'tasks/get', { taskId }, taskId);
    assert.equal(after.body.result?.['status'], 'cancelled');
  });
});

describe('2026-07-28 state on a one-replica route', () => {
  it('is not wrapped: the client sees the upstream requestState and task ids as they are', async () => {
    const a = await startStatefulServer('only');
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: a.url, healthCheck: { interval: 0 } }] });
    try {
      const first = await call(gw.base, 1, 'tools/call', { name: 'ask_name', arguments: {} }, 'ask_name');
      assert.ok((first.body.result?.['requestState'] as string).startsWith('v1.'), 'the SDK codec\'s own value');
      const task = await call(gw.base, 2, 'tools/call', { name: 'slow_job', arguments: { ms: 10 } }, 'slow_job');
      const taskId = task.body.result?.['taskId'] as string;
      assert.match(taskId, /^[0-9a-f-]{36}$/);
      await new Promise((r) => setTimeout(r, 30));
      const got = await call(gw.base, 3, 'tasks/get', { taskId }, taskId);
      assert.equal(got.body.result?.['status'], 'completed');
    } finally {
      await gw.close();
      await a.close();
    }
  });
});

describe('the retry the upstream sees', () => {
  it('is the client\'s bytes with only the token swapped back for the upstream\'s requestState', async () => {
    const fakes: FakeUpstream[] = [];
    for (const name of ['p', 'q'])
      fakes.push(
        await startFakeUpstream((_req, res, body) => {
          const msg = JSON.parse(body.toString()) as { id: number; params: { requestState?: string } };
          const result = msg.params.requestState === undefined ? { resultType: 'input_required', requestState: `state of ${name}: \u00e9\"/` } : { content: [{ type: 'text', text: `done on ${name}` }] };
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
        }),
      );
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: fakes.map((f, i) => ({ url: `${f.url}/mcp`, id: `f${i}` })), balance: 'round-robin', healthCheck: { interval: 0 } }] });
    try {
      const first = await call(gw.base, 1, 'tools/call', { name: 'x', arguments: {} }, 'x');
      const token = first.body.result?.['requestState'] as string;
      const creator = fakes.findIndex((f) => f.requests.length === 1);
      // Odd spacing and an integer past 2^53: a re-serialised body would change both.
      const raw = `{"jsonrpc":"2.0",  "id":2,"method":"tools/call","params":{"name":"x","arguments":{"n":12345678901234567890},"requestState":"${token}","_meta":${JSON.stringify(META)}}}`;
      const res = await fetch(`${gw.base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'x' },
        body: raw,
      });
      const answer = (await res.json()) as { result: { content: { text: string }[] } };
      assert.equal(answer.result.content[0]?.text, `done on ${'pq'[creator]}`);
      const seen = fakes[creator]!.requests.at(-1)!.body.toString();
      assert.equal(seen, raw.replace(JSON.stringify(token), JSON.stringify(`state of ${'pq'[creator]}: \u00e9"/`)));
    } finally {
      await gw.close();
      for (const f of fakes) await f.close();
    }
  });
});
