// SSE passes event by event, byte-exact, with heartbeats on silence and a cap for slow clients.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { send, sleep, startFakeUpstream, startTestGateway, waitFor } from '../helpers.ts';

const EVENTS = [
  'retry: 3000\n\n',
  ': a comment line\n\n',
  'id: 1\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n',
  'id: 2\r\ndata: line one\r\ndata: line two\r\n\r\n',
  'data: {"text":"unicode \u2028 and \u00e9"}\n\n',
  'id: 3\rdata: cr only\r\r',
  'data:no-space\n\n',
  'id: 4\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n',
];

describe('SSE streaming', () => {
  it('passes each event within 20 ms of the upstream writing it, byte for byte', async (t) => {
    const written: number[] = [];
    const fake = await startFakeUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      for (const e of EVENTS) {
        await sleep(100);
        written.push(performance.now());
        res.write(e);
      }
      res.end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const received: { at: number; bytes: Buffer }[] = [];
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = httpRequest(`${gw.base}/mcp`, { method: 'GET', headers: { accept: 'text/event-stream', 'accept-encoding': 'gzip, br' } }, (res) => {
          res.on('data', (c: Buffer) => received.push({ at: performance.now(), bytes: c }));
          res.on('end', () => resolve(res.headers));
        });
        req.on('error', reject);
        req.end();
      });
      const all = Buffer.concat(received.map((r) => r.bytes)).toString('utf8');
      assert.equal(all, EVENTS.join(''), 'byte-exact');
      assert.equal(headers['x-accel-buffering'], 'no');
      assert.equal(headers['cache-control'], 'no-cache');
      assert.equal(headers['content-encoding'], undefined, 'never compressed');
      assert.equal(fake.requests[0]?.headers['accept-encoding'], 'identity');
      // Match each upstream write to the moment its last byte arrived at the client.
      let offset = 0;
      let idx = 0;
      let got = 0;
      const delays: number[] = [];
      for (const r of received) {
        got += r.bytes.length;
        while (idx < EVENTS.length && offset + Buffer.byteLength(EVENTS[idx] as string) <= got) {
          offset += Buffer.byteLength(EVENTS[idx] as string);
          delays.push(r.at - (written[idx] as number));
          idx++;
        }
      }
      assert.equal(delays.length, EVENTS.length);
      t.diagnostic(`per-event delay upstream write -> client receive: max ${Math.max(...delays).toFixed(2)} ms, mean ${(delays.reduce((a, b) => a + b, 0) / delays.length).toFixed(2)} ms`);
      for (const [i, d] of delays.entries()) assert.ok(d < 20, `event ${i} took ${d.toFixed(1)} ms`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('sends the response headers at once, before any event', async () => {
    const fake = await startFakeUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      await sleep(1500);
      res.end('data: late\n\n');
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const t0 = performance.now();
      const res = await fetch(`${gw.base}/mcp`);
      const headersAfter = performance.now() - t0;
      assert.ok(headersAfter < 1000, `headers after ${headersAfter} ms`);
      assert.equal(await res.text(), 'data: late\n\n');
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('sends comment heartbeats on an idle stream, only between events', async () => {
    const fake = await startFakeUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\ndata: par'); // an unfinished event: no heartbeat may split it
      await sleep(500);
      res.write('tial\n\n');
      await sleep(500);
      res.end('data: end\n\n');
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], timeouts: { heartbeat: '100ms' } });
    try {
      // A resuming GET: bytes pass as they come.
      const text = await (await fetch(`${gw.base}/mcp`, { headers: { 'last-event-id': '0' } })).text();
      assert.ok(text.startsWith('id: 1\ndata: partial\n\n: keep-alive\n\n'), JSON.stringify(text));
      const beats = text.split(': keep-alive\n\n').length - 1;
      assert.ok(beats >= 3, `${beats} heartbeats`);
      assert.ok(text.endsWith('data: end\n\n'));
      // A GET that may be HTTP+SSE: its first event is held until complete (it may be the
      // endpoint event to seal); heartbeats still go out, never inside an event.
      const legacy = await (await fetch(`${gw.base}/mcp`)).text();
      assert.equal(legacy.replaceAll(': keep-alive\n\n', ''), 'id: 1\ndata: partial\n\ndata: end\n\n');
      for (let i = legacy.indexOf(': keep-alive'); i !== -1; i = legacy.indexOf(': keep-alive', i + 1)) {
        assert.ok(i === 0 || legacy.slice(i - 2, i) === '\n\n', `heartbeat inside an event at ${i}: ${JSON.stringify(legacy)}`);
      }
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('closes and logs the stream of a client that stops reading for limits.sseClientStall', async () => {
    let upstreamClosed = false;
    const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`;
    const fake = await startFakeUpstream(async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.on('close', () => (upstreamClosed = true));
      for (let i = 0; i < 2000 && !upstreamClosed; i++) {
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r).once('close', r));
      }
      res.end();
      void req;
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], limits: { sseClientStall: '1s' } });
    try {
      const req = httpRequest(`${gw.base}/mcp`, { method: 'GET' }, (res) => {
        res.pause(); // never read
      });
      req.on('error', () => {});
      req.end();
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'slow-client'), 10_000, 'slow-client access log');
      const warn = gw.logs.find((l) => l['msg'] === 'slow SSE client: stream closed');
      assert.ok(warn, 'a warning names the closed stream');
      await waitFor(() => upstreamClosed, 5000, 'upstream request aborted');
      req.destroy();
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('passes a JSON response body unchanged with its content-length', async () => {
    const payload = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { big: 'y'.repeat(200_000) } });
    const fake = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(payload)));
      assert.equal(r.body.toString(), payload);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('holds a large JSON body back while the client does not read, then delivers it intact', async () => {
    const total = 64 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, 'z');
    let written = 0;
    const fake = await startFakeUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': total });
      while (written < total) {
        written += block.length;
        if (!res.write(block)) await new Promise((r) => res.once('drain', r).once('close', r));
        if (res.destroyed) return;
      }
      res.end();
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      let received = 0;
      let resume: () => void = () => undefined;
      const done = new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${gw.base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.pause();
          resume = () => {
            res.on('data', (c: Buffer) => (received += c.length));
            res.on('end', () => resolve(received));
            res.resume();
          };
        });
        req.on('error', reject);
        req.end('{"jsonrpc":"2.0","id":1,"method":"ping"}');
      });
      await waitFor(() => written > 0, 5000, 'upstream started writing');
      await sleep(1000);
      // Without backpressure Sluice would read all 64 MiB into memory at loopback speed.
      assert.ok(written < total / 2, `upstream wrote only what the buffers hold while the client was paused (${written} bytes)`);
      resume();
      assert.equal(await done, total);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('aborts the upstream request when the client leaves before the JSON answer', async () => {
    let upstreamClosed = false;
    const fake = await startFakeUpstream((_req, res) => {
      res.on('close', () => (upstreamClosed = true)); // never answers
    });
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }] });
    try {
      const req = httpRequest(`${gw.base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}');
      await waitFor(() => fake.requests.length === 1, 5000, 'request reached the upstream');
      req.destroy();
      await waitFor(() => upstreamClosed, 2000, 'upstream request aborted within 2 s');
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'client-closed'), 2000, 'access log says client-closed');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
