// Connect, response-header, stream-idle and total-request timeouts; 502 vs 504.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, sleep, startFakeUpstream, startTestGateway, freePort, waitFor } from '../helpers.ts';

/**
 * A loopback port whose listen backlog is full, so further SYNs are dropped and a connect
 * times out: a real kernel behaviour no in-process node server can produce (node accepts).
 */
async function saturatedPort(): Promise<{ port: number; stop(): void }> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'time.sleep(60)',
  ].join('\n');
  const child: ChildProcess = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('error', reject);
  });
  await sleep(200);
  return { port, stop: () => child.kill('SIGKILL') };
}

describe('timeouts and upstream failures', () => {
  it('upstream down: 502 with a JSON-RPC error body', async () => {
    const port = await freePort(); // released: nothing listens there
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${port}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list', {}, 42) });
      assert.equal(r.status, 502);
      const body = JSON.parse(r.body.toString()) as { id: number; error: { code: number; data: { sluice: string } } };
      assert.equal(body.id, 42);
      assert.equal(body.error.code, -32603);
      assert.equal(body.error.data.sluice, 'SLUICE_ERR_UPSTREAM_UNAVAILABLE');
      const get = await send(`${gw.base}/mcp`);
      assert.equal(get.status, 502);
    } finally {
      await gw.close();
    }
  });

  it('connect timeout: 504', async () => {
    const sat = await saturatedPort();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `http://127.0.0.1:${sat.port}/mcp` }], timeouts: { connect: '300ms' } });
    try {
      const t0 = performance.now();
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(r.status, 504);
      assert.ok(performance.now() - t0 < 3000);
      assert.match(r.body.toString(), /connect timed out/);
    } finally {
      await gw.close();
      sat.stop();
    }
  });

  it('response-header timeout: 504 with a JSON-RPC error body', async () => {
    const fake = await startFakeUpstream(() => {
      /* accept the request and never answer */
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], timeouts: { responseHeaders: '300ms' } });
    try {
      const t0 = performance.now();
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x' }, 5) });
      assert.equal(r.status, 504);
      // Sluice's own timer answers, not undici's backstop (2 s later and up to 0.5 s late).
      assert.ok(performance.now() - t0 < 2000);
      const body = JSON.parse(r.body.toString()) as { id: number; error: { data: { sluice: string } } };
      assert.equal(body.id, 5);
      assert.equal(body.error.data.sluice, 'SLUICE_ERR_UPSTREAM_TIMEOUT');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('stream idle timeout ends a silent stream; any byte resets it', async () => {
    const fake = await startFakeUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 4; i++) {
        res.write(`data: ${i}\n\n`);
        await sleep(150); // below the idle limit: keeps the stream alive
      }
      // then silence
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], timeouts: { streamIdle: '400ms', heartbeat: 0 } });
    try {
      const t0 = performance.now();
      const text = await (await fetch(`${gw.base}/mcp`)).text();
      const took = performance.now() - t0;
      assert.equal(text, 'data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n');
      assert.ok(took > 750 && took < 3000, `ended after ${took} ms`);
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'upstream-idle'), 2000, 'upstream-idle log');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('total request time limit: 504 before headers, stream ended after', async () => {
    const fake = await startFakeUpstream(async (req, res) => {
      if (req.url?.includes('late')) {
        await sleep(2000);
        res.writeHead(200).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 50 && !res.destroyed; i++) {
        res.write(`data: ${i}\n\n`);
        await sleep(50);
      }
      res.end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], timeouts: { request: '500ms' } });
    try {
      const late = await send(`${gw.base}/mcp?late`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(late.status, 504);
      const t0 = performance.now();
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      const took = performance.now() - t0;
      assert.equal(r.status, 200);
      assert.ok(took < 1500, `cut after ${took} ms`);
      assert.ok(r.body.toString().split('\n\n').length < 50);
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'request-timeout'), 2000, 'request-timeout log');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
