// Where a stdio child's messages go (stdio-session.ts), with a child that is a few lines of Node
// and a stand-in for the client's transport (no sockets): an answer goes where its request came
// from (the transport knows), progress to the request that named its token, a request or log
// line the child sends mid-call to the call in flight, everything else to the session's stream;
// a session that ends answers the calls still waiting, in plain words.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/server';
import { buildConfig } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { ProcessSlots } from '../../../src/broker/process-slots.ts';
import { StdioSession } from '../../../src/broker/stdio-session.ts';

// A child that answers `call` with progress, a question, a log line, a list change, then its answer.
const CHILD = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const out = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\\n');
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method !== 'call') return;
  out({ method: 'notifications/progress', params: { progressToken: m.params._meta.progressToken, progress: 1 } });
  out({ id: 'srv-1', method: 'roots/list' });
  out({ method: 'notifications/message', params: { level: 'info', data: 'working' } });
  out({ method: 'notifications/tools/list_changed' });
  if (m.params.answer) out({ id: m.id, result: { ok: true } });
});`;

const stdio = buildConfig({ routes: [{ path: '/x', upstream: { stdio: { command: process.execPath, args: ['-e', CHILD] } } as never }] }, 't')
  .routes[0]!.stdio!;
const quiet = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

/** Every session a test made: ended after it, pass or fail (a live child would keep the runner waiting). */
const made: StdioSession[] = [];
afterEach(async () => {
  for (const s of made.splice(0)) {
    s.end({ cause: 'deleted', detail: 'test over' });
    await s.child.gone;
  }
});

function session(getOpen = true): { s: StdioSession; sent: { m: JSONRPCMessage; related: RequestId | undefined }[]; client: { onmessage?: (m: JSONRPCMessage) => void } } {
  const sent: { m: JSONRPCMessage; related: RequestId | undefined }[] = [];
  const s = new StdioSession(stdio, { principal: 'anon:t', log: quiet, maxLine: 1 << 20, slot: new ProcessSlots(2, 2, 't').take(undefined), onEnd: () => undefined });
  const client = {
    onmessage: undefined as ((m: JSONRPCMessage) => void) | undefined,
    send: async (m: JSONRPCMessage, o?: { relatedRequestId?: RequestId }) => void sent.push({ m, related: o?.relatedRequestId }),
    close: async () => undefined,
    start: async () => undefined,
  };
  void s.attach(client);
  made.push(s);
  if (getOpen) s.standaloneOpened();
  return { s, sent, client };
}

const waitFor = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
};

describe('StdioSession message routing', () => {
  it("progress to its request, the child's question and log line to the call in flight, a list change to the session's stream, the answer as the transport routes it", async () => {
    const { s, sent, client } = session();
    await s.child.ready;
    client.onmessage?.({ jsonrpc: '2.0', id: 7, method: 'call', params: { answer: true, _meta: { progressToken: 'p7' } } } as JSONRPCMessage);
    await waitFor(() => sent.length === 5);
    const by = (method: string | undefined) => sent.find((x) => (x.m as { method?: string }).method === method);
    assert.equal(by('notifications/progress')?.related, 7);
    assert.equal(by('roots/list')?.related, 7);
    assert.equal(by('notifications/message')?.related, 7);
    assert.equal(by('notifications/tools/list_changed')?.related, undefined);
    assert.deepEqual(by(undefined)?.m, { jsonrpc: '2.0', id: 7, result: { ok: true } });
    s.end({ cause: 'deleted', detail: 'done' });
    await s.child.gone;
  });

  it('what the child says outside any call before the GET stream opens is held, and sent when it opens (server-filesystem asks roots/list at once)', async () => {
    const { s, sent, client } = session(false);
    await s.child.ready;
    client.onmessage?.({ jsonrpc: '2.0', id: 8, method: 'call', params: { answer: true, _meta: { progressToken: 'p8' } } } as JSONRPCMessage);
    await waitFor(() => sent.length === 4);
    assert.equal(sent.find((x) => (x.m as { method?: string }).method === 'notifications/tools/list_changed'), undefined, 'held');
    s.standaloneOpened();
    await waitFor(() => sent.length === 5);
    assert.deepEqual(sent[4], { m: { jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, related: undefined });
    s.end({ cause: 'deleted', detail: 'done' });
    await s.child.gone;
  });

  it('a session that ends answers the calls still waiting with an error that says why', async () => {
    const { s, sent, client } = session();
    await s.child.ready;
    client.onmessage?.({ jsonrpc: '2.0', id: 'w', method: 'call', params: { answer: false, _meta: { progressToken: 'pw' } } } as JSONRPCMessage);
    await waitFor(() => sent.length === 4);
    s.end({ cause: 'idle', detail: 'idle for 5 ms' });
    await waitFor(() => sent.length === 5);
    const last = sent[4]!;
    assert.equal(last.related, 'w');
    assert.match(JSON.stringify(last.m), /"id":"w".*the stdio server is gone: idle for 5 ms/);
    await s.child.gone;
  });
});
