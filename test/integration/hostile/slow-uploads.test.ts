// Issue 15 items 3 and 12: clients that trickle or abandon request bodies cannot hold the
// concurrency cap, a socket or the process's memory for long.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, sleep, startFakeUpstream, startTestGateway, waitFor, RPC_OK } from '../../helpers.ts';

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** What arrives on a socket until it closes. */
function collect(s: Socket): { text: () => string; closed: Promise<void> } {
  let data = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => (data += d));
  s.on('error', () => undefined);
  return { text: () => data, closed: new Promise((r) => s.once('close', () => r())) };
}

describe('slow and unfinished uploads (issue 15.3, 15.12)', () => {
  it('120 sockets trickling bodies under limits.concurrency 100: every legitimate request meanwhile succeeds, the trickles get 408 at the body deadline', async () => {
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], limits: { concurrency: 100 }, timeouts: { requestBody: '2500ms' } });
    const socks: Socket[] = [];
    const seen: ReturnType<typeof collect>[] = [];
    let trickle: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 120; i++) {
        const s = await openSocket(gw.port);
        seen.push(collect(s));
        s.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{`);
        socks.push(s);
      }
      trickle = setInterval(() => {
        for (const s of socks) if (!s.destroyed) s.write(' ');
      }, 200);
      const t0 = Date.now();
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list', {}, i) });
        statuses.push(r.status);
      }
      assert.ok(Date.now() - t0 < 2000, 'the legitimate requests ran while the trickles were still open');
      assert.deepEqual(statuses, new Array(20).fill(200));
      await Promise.all(seen.map((c) => c.closed));
      for (const c of seen) assert.match(c.text(), /^HTTP\/1\.1 408 /, 'a trickled body is refused at the deadline and the connection closed');
      assert.equal(up.requests.length, 20, 'no trickled request reached the upstream');
    } finally {
      clearInterval(trickle);
      for (const s of socks) s.destroy();
      await gw.close();
      await up.close();
    }
  });

  it('a request head sent byte by byte is cut at timeouts.requestHeaders', async () => {
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200).end());
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], timeouts: { requestHeaders: '1s' } });
    const s = await openSocket(gw.port);
    const c = collect(s);
    const head = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(200)}\r\n`;
    let i = 0;
    const drip = setInterval(() => !s.destroyed && i < head.length && s.write(head[i++] as string), 50);
    const t0 = Date.now();
    try {
      await c.closed;
      const took = Date.now() - t0;
      assert.ok(took < 4000, `closed after ${took} ms`);
      assert.match(c.text(), /^HTTP\/1\.1 408 |^$/);
      assert.equal(up.requests.length, 0);
    } finally {
      clearInterval(drip);
      s.destroy();
      await gw.close();
      await up.close();
    }
  });

  it('bodies left unfinished hold no more than limits.bodyMemory, get 503 past it, and give it all back when they close', async () => {
    const up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], limits: { bodyMemory: '1MiB', body: '512KiB' } });
    const socks: Socket[] = [];
    const seen: ReturnType<typeof collect>[] = [];
    try {
      const chunk = 'x'.repeat(200 * 1024);
      for (let i = 0; i < 8; i++) {
        const s = await openSocket(gw.port);
        seen.push(collect(s));
        // Each stops 100 KiB short of what it declared.
        s.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nContent-Length: ${300 * 1024}\r\n\r\n${chunk}`);
        socks.push(s);
        await sleep(30);
      }
      await waitFor(() => seen.filter((c) => c.text().startsWith('HTTP/1.1 503')).length >= 3, 5000, 'refusals past the budget');
      assert.ok(gw.gw.ctx.bodies.used <= 1024 * 1024, `held ${gw.gw.ctx.bodies.used}`);
      const refused = seen.find((c) => c.text().startsWith('HTTP/1.1 503'));
      assert.match(refused?.text() ?? '', /SLUICE_ERR_BODY_MEMORY/);
      assert.match(refused?.text() ?? '', /retry-after: 1/i);
      for (const s of socks) s.destroy();
      await waitFor(() => gw.gw.ctx.bodies.used === 0, 3000, 'the budget returned');
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') });
      assert.equal(r.status, 200);
    } finally {
      for (const s of socks) s.destroy();
      await gw.close();
      await up.close();
    }
  });
});
