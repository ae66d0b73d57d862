// The leak soak of stdio routes (issue 19): SESSIONS (300 in `npm run soak`) opened and abandoned in every way a
// client or server leaves (DELETE, idle timeout, HTTP+SSE stream closed, a client process killed
// with its GET stream open, the child crashing) leave no child and no zombie, counted in the
// process table; maxProcesses holds under 200 concurrent initializes; a Sluice process stopped
// with SIGTERM leaves none of its children behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alive, childrenOf } from '../fixtures/process-table.ts';
import { JSON_HEADERS, rpc, sleep, spawnSluice, startTestGateway, waitFor } from '../helpers.ts';

// 300 sessions (the soak) is `npm run soak`, ~100 s here; the suite runs 60 of the same.
const SESSIONS = Number(process.env['SLUICE_SOAK_SESSIONS'] ?? 60);
const EACH = Math.floor(SESSIONS / 5);
const FIXTURE = new URL('../fixtures/stdio-server.ts', import.meta.url).pathname;
const INIT = rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'soak', version: '1' } });
const route = (extra: Record<string, unknown> = {}) => ({ path: '/mcp', upstream: { stdio: { command: process.execPath, args: [FIXTURE], ...extra } } as never });

/** An initialized session (raw HTTP, as any client): its Mcp-Session-Id, or the status that refused it. */
async function initialize(base: string): Promise<{ sid?: string; status: number }> {
  const r = await fetch(`${base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INIT });
  await r.text();
  const sid = r.headers.get('mcp-session-id') ?? undefined;
  if (!sid) return { status: r.status };
  const headers = { ...JSON_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  return { sid, status: r.status };
}

const sessionHeaders = (sid: string) => ({ ...JSON_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });

/** Runs `n` tasks, `width` at a time. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await task(next++);
  }));
}

// A client process that opens `n` sessions, each with its GET stream, says "ready" and waits to be killed.
const KILLED_CLIENT = `
const base = process.argv[2], n = Number(process.argv[3]);
if (!base || !(n > 0)) throw new Error('usage: client.mjs BASE N');
const H = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'k', version: '1' } } });
for (let i = 0; i < n; i++) {
  const r = await fetch(base + '/mcp', { method: 'POST', headers: H, body: init });
  await r.text();
  const sid = r.headers.get('mcp-session-id');
  if (!sid) throw new Error('no session: ' + r.status);
  const h = { ...H, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(base + '/mcp', { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  const g = await fetch(base + '/mcp', { headers: { ...h, accept: 'text/event-stream' } });
  g.body.getReader().read();
}
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

describe('stdio routes leak nothing', () => {
  it(`${EACH * 5} sessions abandoned in every way leave zero children and zero zombies`, async () => {
    const gw = await startTestGateway({ routes: [route({ idleTimeout: '1s', killGrace: '500ms', maxProcesses: 400 })] });
    const seen = new Set<number>();
    const sampler = setInterval(() => {
      for (const c of childrenOf(process.pid)) seen.add(c.pid);
    }, 50);
    const counts = { deleted: 0, idle: 0, sse: 0, killed: 0, crashed: 0 };
    try {
      // EACH ended by DELETE.
      await pool(EACH, 6, async () => {
        const { sid } = await initialize(gw.base);
        const r = await fetch(`${gw.base}/mcp`, { method: 'DELETE', headers: sessionHeaders(sid!) });
        await r.text();
        if (r.ok) counts.deleted++;
      });
      // EACH simply left: the idle timeout ends them.
      await pool(EACH, 6, async () => {
        if ((await initialize(gw.base)).sid) counts.idle++;
      });
      // EACH HTTP+SSE streams opened and closed.
      await pool(EACH, 6, () =>
        new Promise<void>((resolve, reject) => {
          const req = httpRequest(`${gw.base}/mcp/sse`, { headers: { accept: 'text/event-stream' } }, (res) => {
            res.once('data', () => {
              counts.sse++;
              req.destroy();
              resolve();
            });
          });
          req.on('error', () => undefined);
          req.once('timeout', () => reject(new Error('no endpoint event')));
          req.setTimeout(10_000);
          req.end();
        }),
      );
      // EACH sessions of client processes killed with their GET streams open.
      const dir = mkdtempSync(join(tmpdir(), 'sluice-soak-'));
      writeFileSync(join(dir, 'client.mjs'), KILLED_CLIENT);
      const per = Math.max(1, Math.floor(EACH / 6));
      await pool(Math.ceil(EACH / per), 3, async (i) => {
        const n = Math.min(per, EACH - i * per);
        const c = spawn(process.execPath, [join(dir, 'client.mjs'), gw.base, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
        await new Promise<void>((resolve, reject) => {
          c.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
          c.once('exit', (code) => reject(new Error(`client exited ${code}`)));
        });
        c.removeAllListeners('exit');
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
        counts.killed += n;
      });
      // EACH whose child crashes.
      await pool(EACH, 6, async () => {
        const { sid } = await initialize(gw.base);
        const r = await fetch(`${gw.base}/mcp`, { method: 'POST', headers: sessionHeaders(sid!), body: rpc('tools/call', { name: 'crash', arguments: {} }, 2) });
        await r.text();
        counts.crashed++;
      });
      assert.deepEqual(counts, { deleted: EACH, idle: EACH, sse: EACH, killed: EACH, crashed: EACH });
      await waitFor(() => childrenOf(process.pid).length === 0, 20_000, 'every child gone');
      clearInterval(sampler);
      // Every child Sluice started (its log names each pid), and any the sampler saw: none alive
      // anywhere, so none was merely re-parented.
      const started = gw.logs.filter((l) => l['msg'] === 'stdio session started').map((l) => Number(l['pid']));
      assert.equal(started.length, EACH * 5, JSON.stringify(gw.logs.filter((l) => String(l['msg']).startsWith('stdio session')).reduce((a: Record<string, number>, l) => ((a[String(l['msg']) + String(l['cause'] ?? '')] = (a[String(l['msg']) + String(l['cause'] ?? '')] ?? 0) + 1), a), {})));
      assert.deepEqual([...new Set([...started, ...seen])].filter(alive), [], 'no child alive');
      const ended = gw.logs.filter((l) => l['msg'] === 'stdio session ended');
      const causes: Record<string, number> = {};
      for (const l of ended) causes[String(l['cause'])] = (causes[String(l['cause'])] ?? 0) + 1;
      assert.equal(ended.length, EACH * 5, JSON.stringify(causes));
      assert.equal(causes['crashed'], EACH);
      assert.equal(causes['idle'] ?? 0, 2 * EACH, 'left sessions and killed clients end by idle timeout');
      assert.equal(causes['deleted'], 2 * EACH, 'DELETE and closed HTTP+SSE streams');
    } finally {
      clearInterval(sampler);
      await gw.close();
    }
    assert.deepEqual(childrenOf(process.pid), []);
  });

  it('maxProcesses holds under 200 concurrent initializes', async () => {
    const gw = await startTestGateway({ routes: [route({ maxProcesses: 20 })] });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, childrenOf(process.pid).length)), 20);
    try {
      const results = await Promise.all(Array.from({ length: 200 }, () => initialize(gw.base)));
      const ok = results.filter((r) => r.sid);
      const refused = results.filter((r) => r.status === 503);
      assert.equal(ok.length, 20);
      assert.equal(refused.length, 180);
      await sleep(100);
      assert.ok(most <= 20, `at most ${most} children at once`);
      for (const r of ok) await (await fetch(`${gw.base}/mcp`, { method: 'DELETE', headers: sessionHeaders(r.sid!) })).text();
      await waitFor(() => childrenOf(process.pid).length === 0, 10_000, 'children gone');
    } finally {
      clearInterval(sampler);
      await gw.close();
    }
  });

  it('a Sluice process stopped with SIGTERM leaves none of its children', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-term-'));
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(cfg, `listen: [{ host: 127.0.0.1, port: 0 }]\nroutes:\n  - path: /mcp\n    upstream:\n      stdio: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(FIXTURE)}, --ignore-term], killGrace: 500ms }\n`);
    const sluice = await spawnSluice(['serve', '--config', cfg], '/mcp -> stdio');
    const base = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(sluice.stderr())![1]!;
    for (let i = 0; i < 10; i++) assert.ok((await initialize(base)).sid);
    const pids = childrenOf(sluice.child.pid!).map((c) => c.pid);
    assert.equal(pids.length, 10);
    assert.equal(await sluice.stop(), 0);
    assert.deepEqual(pids.filter(alive), [], 'every child (deaf to SIGTERM) was killed before Sluice exited');
  });
});
