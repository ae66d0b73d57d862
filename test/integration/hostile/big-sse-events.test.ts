// Issue 15 items 4, 5 and 7: big SSE events reach a fast client whole (backpressure instead of a
// cut), the payload tap holds a bounded share of a huge event, and CR-only framing flows, gets
// heartbeats and a shutdown retry hint.
import assert from 'node:assert/strict';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { sleep, startFakeUpstream, startTestGateway, waitFor } from '../../helpers.ts';

const MiB = 1024 * 1024;

function untilDrainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** An upstream that answers each GET with one SSE event of `size` bytes of data, written as fast as its socket takes it. */
function bigEventUpstream(size: number, onClose?: () => void) {
  return startFakeUpstream(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.on('close', () => onClose?.());
    const piece = Buffer.alloc(MiB, 'x');
    res.write('data: ');
    for (let sent = 0; sent < size && !res.destroyed; sent += MiB) {
      if (!res.write(piece)) await untilDrainOrClose(res);
    }
    res.end('\n\n');
  });
}

/** Reads a GET stream to its end; resolves with the byte count and whether it ended with the blank line. */
function readAll(url: string): Promise<{ bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { method: 'GET', headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      let bytes = 0;
      let tail = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        tail = (tail + c.subarray(-2).toString('latin1')).slice(-2);
      });
      res.on('end', () => resolve({ bytes, complete: tail === '\n\n' }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe('big SSE events (issue 15.4, 15.5)', () => {
  it('a 64 MiB single event reaches a fast client whole, 10 times out of 10', async () => {
    const up = await bigEventUpstream(64 * MiB);
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], logging: { access: false } });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await readAll(`${gw.base}/mcp`);
        assert.deepEqual(r, { bytes: 64 * MiB + 8, complete: true }, `trial ${i}`);
      }
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a client that stops reading is still cut after sseClientStall, and the upstream request ends', async () => {
    let upstreamClosed = false;
    const up = await bigEventUpstream(64 * MiB, () => (upstreamClosed = true));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], limits: { sseClientStall: '1s' } });
    try {
      const req = httpRequest(`${gw.base}/mcp`, { method: 'GET', agent: false }, (res) => res.pause());
      req.on('error', () => undefined);
      req.end();
      await waitFor(() => gw.logs.some((l) => l['outcome'] === 'slow-client'), 8000, 'slow-client');
      await waitFor(() => upstreamClosed, 5000, 'upstream request aborted');
      assert.ok(process.memoryUsage().rss < 2048 * MiB);
      req.destroy();
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('with logPayloads, a 100 MiB event is logged by size and the tap holds no copy of it', async () => {
    const up = await bigEventUpstream(100 * MiB);
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp`, logPayloads: { enabled: true } }], logging: { access: false } });
    try {
      global.gc?.();
      const before = process.memoryUsage();
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const r = await readAll(`${gw.base}/mcp`);
      clearInterval(sampler);
      assert.deepEqual(r, { bytes: 100 * MiB + 8, complete: true });
      const line = gw.logs.find((l) => l['payload'] === 'event');
      assert.equal(line?.['message'], '[not logged: event over 1 MiB]');
      assert.equal(line?.['bytes'], 100 * MiB);
      // The old tap kept the event as a string (+812 MiB RSS in the run); the stream
      // itself needs a few MiB of buffers here.
      const grown = (peak - before.rss) / MiB;
      assert.ok(grown < 200, `RSS grew ${grown.toFixed(0)} MiB while a 100 MiB event passed`);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('CR-only SSE framing (issue 15.7)', () => {
  it('an HTTP+SSE endpoint event ending in \\r\\r flows at once, heartbeats follow it, and shutdown ends the stream with retry:', async () => {
    const up = await startFakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\rdata: /messages?sessionId=abc\r\r');
      // then silence: the stream stays open
    });
    const gw = await startTestGateway({ routes: [{ path: '/pub', upstream: `${up.url}/` }], timeouts: { heartbeat: '200ms' }, shutdown: { retryHint: 1500 } });
    let text = '';
    let ended = false;
    const req = httpRequest(`${gw.base}/pub/sse`, { method: 'GET', agent: false }, (res) => {
      res.setEncoding('latin1');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (ended = true));
    });
    req.on('error', () => undefined);
    req.end();
    try {
      await waitFor(() => text.includes('\r\r'), 1000, 'the endpoint event, without waiting for another upstream byte');
      assert.match(text, /^event: endpoint\rdata: \/pub\/messages\?sessionId=[^\r]+\r\r/);
      assert.ok(!text.includes('sessionId=abc'), 'the upstream session id was sealed');
      await waitFor(() => text.includes(': keep-alive\n\n'), 2000, 'a heartbeat after a CR-only event');
      await sleep(50);
      await gw.close();
      await waitFor(() => ended, 3000, 'stream ended cleanly');
      assert.ok(text.endsWith('retry: 1500\n\n'), JSON.stringify(text.slice(-40)));
    } finally {
      req.destroy();
      await gw.close();
      await up.close();
    }
  });
});
