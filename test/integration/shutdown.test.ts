// SIGTERM on the real `sluice serve` process: stop accepting, let in-flight POSTs finish,
// end SSE streams with a retry hint, exit 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, sleep, startFakeUpstream } from '../helpers.ts';
import { KeyRing, newKeyText } from '../../src/session/key-ring.ts';
import { sealSession } from '../../src/session/token.ts';

const BIN = new URL('../../bin/sluice.js', import.meta.url).pathname;

describe('graceful shutdown', () => {
  it('drains POSTs, ends SSE with retry:, refuses new connections and exits 0', async () => {
    const fake = await startFakeUpstream(async (req, res, body) => {
      if (req.method === 'POST' && !body.toString().includes('subscriptions/listen')) {
        await sleep(1200);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{"done":true}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; !res.destroyed && i < 600; i++) {
        res.write(`id: ${i}\ndata: tick\n\n`);
        await sleep(50);
      }
      res.end();
    });
    const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(cfg, `listen:\n  - host: 127.0.0.1\n    port: 0\nroutes:\n  - path: /mcp\n    upstream: ${fake.url}/mcp\nshutdown:\n  drain: 5s\n  retryHint: 2500ms\n`);
    const key = newKeyText();
    const child = spawn(process.execPath, [BIN, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SLUICE_SESSION_KEYS: key } });
    const token = sealSession(KeyRing.parse(key), { route: '/mcp', replica: `${fake.url}/mcp`, upstreamSession: 's', principal: undefined, issuedAt: 1_790_000_000 });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /http:\/\/127\.0\.0\.1:(\d+)\/mcp/.exec(err);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', () => reject(new Error(`exited early: ${err}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

      const stream = fetch(`${base}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': token } }).then((r) => r.text());
      const listen = send(`${base}/mcp`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'subscriptions/listen', params: {} }),
      }).then((r) => ({ ...r, at: performance.now() }));
      await sleep(300);
      const post = send(`${base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'slow' }) }).then((r) => ({ ...r, at: performance.now() }));
      await sleep(200);
      child.kill('SIGTERM');
      await sleep(200);
      await assert.rejects(send(`${base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') }), /ECONNREFUSED|ECONNRESET|socket hang up/);

      const text = await stream;
      assert.ok(text.endsWith('\n\nretry: 2500\n\n'), JSON.stringify(text.slice(-60)));
      assert.ok(text.includes('id: 0\ndata: tick\n\n'));
      const listenDone = await listen;
      assert.ok(listenDone.body.toString().endsWith('\n\nretry: 2500\n\n'), 'a subscriptions/listen stream is ended like a GET stream');
      const done = await post;
      assert.ok(listenDone.at < done.at, 'the listen stream ended at SIGTERM, not after the drain');
      assert.equal(done.status, 200);
      assert.deepEqual(JSON.parse(done.body.toString()).result, { done: true });
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await fake.close();
    }
  });
});
