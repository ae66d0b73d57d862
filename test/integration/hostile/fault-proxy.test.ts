// Issue 15: a TCP fault proxy between Sluice and its upstream (loopback): latency, 1-byte slices
// and a reset mid-body, for JSON and SSE answers. Slow or sliced answers arrive byte for byte;
// a reset never looks like a complete answer; Sluice keeps serving.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, sleep, startFakeUpstream, startTestGateway, type FakeUpstream } from '../../helpers.ts';

type Fault = { kind: 'latency'; ms: number } | { kind: 'slices' } | { kind: 'reset'; afterBytes: number };

/** Forwards client→upstream as is and upstream→client with the fault applied. */
async function faultProxy(target: number, fault: () => Fault): Promise<{ port: number; server: Server }> {
  const server = createServer((client: Socket) => {
    const f = fault();
    const up = connect(target, '127.0.0.1');
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.end());
    client.pipe(up);
    let seen = 0;
    let queue = Promise.resolve();
    up.on('data', (chunk: Buffer) => {
      if (f.kind === 'reset') {
        if (seen + chunk.length > f.afterBytes) {
          client.write(chunk.subarray(0, Math.max(0, f.afterBytes - seen)));
          client.resetAndDestroy();
          up.destroy();
          return;
        }
        seen += chunk.length;
        client.write(chunk);
        return;
      }
      up.pause();
      queue = queue.then(async () => {
        if (f.kind === 'latency') {
          await sleep(f.ms);
          client.write(chunk);
        } else {
          for (const b of chunk) {
            client.write(Buffer.of(b));
            await new Promise((r) => setImmediate(r));
          }
        }
        up.resume();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server };
}

const JSON_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'j'.repeat(20_000) } });
const SSE_BODY = Array.from({ length: 5 }, (_, i) => `id: ${i}\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { i, pad: 's'.repeat(500) } })}\n\n`).join('');

function get(url: string): Promise<{ status: number; body: string; aborted: boolean }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method: 'GET', headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, aborted: false }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, aborted: true }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, aborted: true }));
    });
    req.on('error', () => resolve({ status: 0, body: '', aborted: true }));
    req.end();
  });
}

describe('fault-proxy matrix (issue 15)', () => {
  let up: FakeUpstream;
  let fault: Fault = { kind: 'slices' };
  let proxy: { port: number; server: Server };
  before(async () => {
    up = await startFakeUpstream((req, res) => {
      if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'text/event-stream' }).end(SSE_BODY);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(JSON_BODY) }).end(JSON_BODY);
    });
    proxy = await faultProxy(up.port, () => fault);
  });
  after(async () => {
    proxy.server.close();
    await up.close();
  });

  const faults: Fault[] = [{ kind: 'latency', ms: 30 }, { kind: 'slices' }];
  for (const f of faults) {
    it(`${f.kind}: JSON and SSE answers arrive byte for byte`, async () => {
      fault = f;
      const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${proxy.port}/mcp` }], logging: { access: false } });
      try {
        const j = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x' }) });
        assert.equal(j.status, 200);
        assert.equal(j.body.toString(), JSON_BODY);
        const s = await get(`${gw.base}/mcp`);
        assert.deepEqual(s, { status: 200, body: SSE_BODY, aborted: false });
      } finally {
        await gw.close();
      }
    });
  }

  it('reset mid-body: never a complete-looking answer; before any body byte: 502; Sluice keeps serving', async () => {
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${proxy.port}/mcp` }], logging: { access: false } });
    try {
      fault = { kind: 'reset', afterBytes: 1000 };
      const j = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x' }) }).catch(() => undefined);
      assert.ok(j === undefined || j.body.toString() !== JSON_BODY, 'a cut JSON body never arrives looking whole');
      const s = await get(`${gw.base}/mcp`);
      assert.ok(SSE_BODY.startsWith(s.body) && s.body.length < SSE_BODY.length, 'a cut stream carries only a prefix of what was sent');
      assert.ok(s.aborted || /\n\n$/.test(s.body), 'a stream ends cleanly only between events');
      fault = { kind: 'reset', afterBytes: 0 };
      const early = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x' }) });
      assert.equal(early.status, 502);
      fault = { kind: 'slices' };
      const ok = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x' }) });
      assert.equal(ok.body.toString(), JSON_BODY);
    } finally {
      await gw.close();
    }
  });
});
