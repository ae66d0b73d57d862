// Request size and shape limits: bad input gets a clear error and the process stays up.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway, RPC_OK } from '../helpers.ts';

describe('limits', () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${fake.url}/mcp` }], limits: { body: '64KiB', headerBytes: '8KiB', headerCount: 40, batch: 3 } });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('answers 413 from the declared length before the body is read', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () => {
        // Declare 10 MB but send only a few bytes: the 413 must come anyway.
        s.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"jsonrpc"`);
      });
      let out = '';
      s.on('data', (c) => {
        out += c.toString();
        if (out.includes('\r\n\r\n')) {
          s.destroy();
          resolve(out);
        }
      });
      s.on('error', reject);
      setTimeout(() => reject(new Error('no answer')), 3000);
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.equal(fake.requests.length, 0);
  });

  it('answers 413 to a chunked body that grows past the limit', async () => {
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'transfer-encoding': 'chunked' }, body: 'x'.repeat(100 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body.toString()).error.code, -32600);
  });

  it('answers 431 to oversized headers and to too many header fields', async () => {
    const big = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-big': 'a'.repeat(9000) }, body: rpc('ping') });
    assert.equal(big.status, 431);
    const many: Record<string, string> = { ...JSON_HEADERS };
    for (let i = 0; i < 50; i++) many[`x-h${i}`] = '1';
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: many, body: rpc('ping') });
    assert.equal(r.status, 431);
  });

  it('rejects malformed JSON and non-JSON-RPC bodies with clear errors', async () => {
    const bad = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body.toString()).error.code, -32700);
    const notRpc = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: '{"hello":"world"}' });
    assert.equal(notRpc.status, 400);
    assert.equal(JSON.parse(notRpc.body.toString()).error.code, -32600);
    assert.equal(fake.requests.length, 0);
  });

  it('limits batches, and allows them only for 2025-03-26', async () => {
    const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_v, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })));
    const ok = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: batch(3) });
    assert.equal(ok.status, 200);
    const tooMany = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: batch(4) });
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.toString(), /batch too large/);
    const newer = await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2025-06-18' }, body: batch(2) });
    assert.equal(newer.status, 400);
    assert.match(newer.body.toString(), /not allowed/);
  });

  it('answers 404 for unknown paths and 405 for TRACE, and keeps serving', async () => {
    assert.equal((await send(`${gw.base}/nope`)).status, 404);
    assert.equal((await send(`${gw.base}/mcp`, { method: 'TRACE' })).status, 405);
    assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') })).status, 200);
  });
});

describe('concurrency cap', () => {
  it('answers 503 with Retry-After at once past limits.concurrency, while health and metrics still answer', async () => {
    const release: (() => void)[] = [];
    const slow = await startFakeUpstream(
      (_req, res) =>
        new Promise<void>((resolve) => {
          let done = false;
          release.push(() => {
            if (done) return;
            done = true;
            res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
            resolve();
          });
        }),
    );
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${slow.url}/mcp` }], limits: { concurrency: 2 }, admin: { listen: { host: '127.0.0.1', port: 0 } } });
    try {
      const post = () => send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      const first = post();
      const second = post();
      while (release.length < 2) await new Promise((r) => setTimeout(r, 10));
      const shed = await post();
      assert.equal(shed.status, 503);
      assert.equal(shed.headers['retry-after'], '1');
      assert.match(shed.body.toString(), /SLUICE_ERR_OVERLOADED/);
      assert.equal(release.length, 2, 'the shed request never reached the upstream');
      const admin = `http://127.0.0.1:${gw.gw.adminAddress!.port}`;
      assert.equal((await fetch(`${admin}/healthz`)).status, 200);
      assert.match(await (await fetch(`${admin}/metrics`)).text(), /sluice_refused_total\{reason="SLUICE_ERR_OVERLOADED"\} 1/);
      for (const r of release) r();
      assert.equal((await first).status, 200);
      assert.equal((await second).status, 200);
      await new Promise((r) => setTimeout(r, 50));
      const again = post();
      while (release.length < 3) await new Promise((r) => setTimeout(r, 10));
      release[2]!();
      assert.equal((await again).status, 200, 'capacity returns when exchanges end');
    } finally {
      for (const r of release) r();
      await gw.close();
      await slow.close();
    }
  });
});
