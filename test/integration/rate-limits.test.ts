// Rate limits: token buckets per principal, per tool and per route, concurrency caps, 429 with
// Retry-After; two Sluice processes sharing a real Redis enforce one limit; Redis gone ⇒ fail
// open (default) or 503.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashApiKey } from '../../src/security/bearer.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessLines, waitFor, freePort, JSON_HEADERS, rpc, send, spawnSluice, startFakeUpstream, startTestGateway, type FakeUpstream, type SluiceProcess, type TestGateway } from '../helpers.ts';
import { startRedis, type RedisProcess } from '../fixtures/redis.ts';

const call = (name: string, id = 1) => rpc('tools/call', { name, arguments: {} }, id);
const keys = {
  mode: 'resource-server' as const,
  resource: 'http://127.0.0.1/mcp',
  apiKeys: [
    { name: 'alice', sha256: hashApiKey('key-alice') },
    { name: 'bob', sha256: hashApiKey('key-bob') },
  ],
};

function answering(delayMs = 0) {
  return startFakeUpstream(async (req, res, body) => {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const id = body.length ? (JSON.parse(body.toString()) as { id?: unknown }).id : null;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } }));
  });
}

describe('rate limits in memory', () => {
  let up: FakeUpstream;
  let slow: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await answering();
    slow = await answering(400);
    gw = await startTestGateway({
      routes: [
        { path: '/mcp', upstream: up.url, auth: keys, rateLimits: [{ by: 'principal', requests: 5, per: '1m' }, { by: 'tool', requests: 2, per: '1m', names: ['add'] }] },
        { path: '/open', upstream: up.url, rateLimits: [{ by: 'route', requests: 3, per: '1m' }] },
        { path: '/anon', upstream: up.url, rateLimits: [{ by: 'principal', requests: 2, per: '1m' }] },
        { path: '/slow', upstream: slow.url, auth: keys, rateLimits: [{ by: 'principal', concurrent: 1 }] },
      ],
      trustedProxies: ['127.0.0.1'],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await slow.close();
  });
  const post = (path: string, key: string | undefined, body: string) => send(`${gw.base}${path}`, { method: 'POST', headers: { ...JSON_HEADERS, ...(key ? { authorization: `Bearer ${key}` } : {}) }, body });

  it('limits each principal on its own, per tool within that, with 429 and Retry-After', async () => {
    const before = up.requests.length;
    assert.equal((await post('/mcp', 'key-alice', call('add'))).status, 200);
    assert.equal((await post('/mcp', 'key-alice', call('add'))).status, 200);
    const tool = await post('/mcp', 'key-alice', call('add'));
    assert.equal(tool.status, 429, 'third add in a minute');
    assert.equal(tool.headers['retry-after'], '30');
    // Every limit that counts a request takes its token, the refused third add included: echo
    // (outside the per-tool limit) has two of alice's five left.
    assert.equal((await post('/mcp', 'key-alice', call('echo'))).status, 200);
    assert.equal((await post('/mcp', 'key-alice', call('echo'))).status, 200);
    const over = await post('/mcp', 'key-alice', call('echo'));
    assert.equal(over.status, 429);
    assert.equal(over.headers['retry-after'], '12');
    assert.equal((JSON.parse(over.body.toString()) as { error: { message: string } }).error.message, 'Too many requests: limit per principal');
    assert.equal((await post('/mcp', 'key-bob', call('add'))).status, 200, 'bob has his own buckets');
    assert.equal(up.requests.length - before, 5, 'refused requests never reached the upstream');
    assert.equal(accessLines(gw.logs).filter((l) => l['security'] === 'rate-limited').length, 2);
  });

  it('limits a whole route for anonymous callers', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post('/open', undefined, call('echo', i))).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  });

  it('keys anonymous callers by client address (as a trusted proxy names it)', async () => {
    const from = async (xff: string) => (await send(`${gw.base}/anon`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-forwarded-for': xff }, body: call('echo') })).status;
    assert.deepEqual([await from('192.0.2.1'), await from('192.0.2.1'), await from('192.0.2.1')], [200, 200, 429]);
    assert.equal(await from('192.0.2.2'), 200, 'another client address has its own bucket');
  });

  it('caps requests in flight per principal', async () => {
    const [a, b] = await Promise.all([post('/slow', 'key-alice', call('echo')), post('/slow', 'key-alice', call('echo', 2))]);
    assert.deepEqual([a.status, b.status].sort(), [200, 429]);
    assert.equal((await post('/slow', 'key-bob', call('echo'))).status, 200);
    assert.equal((await post('/slow', 'key-alice', call('echo'))).status, 200, 'the slot is free again');
  });
});

describe('rate limits shared through Redis', () => {
  let redis: RedisProcess;
  let up: FakeUpstream;
  let dir: string;
  const procs: SluiceProcess[] = [];
  const ports: number[] = [];
  before(async () => {
    redis = await startRedis();
    up = await answering();
    dir = await mkdtemp(join(tmpdir(), 'sluice-rl-'));
    // Two real `sluice serve` processes with one config (each its own port) and one Redis.
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const file = join(dir, `sluice-${i}.yaml`);
      await writeFile(
        file,
        [
          `listen: [{ host: 127.0.0.1, port: ${port} }]`,
          'routes:',
          '  - path: /mcp',
          `    upstream: ${up.url}`,
          `    auth: { mode: resource-server, resource: "http://127.0.0.1/mcp", apiKeys: [{ name: alice, sha256: "${hashApiKey('key-alice')}" }, { name: bob, sha256: "${hashApiKey('key-bob')}" }] }`,
          '    rateLimits: [{ by: principal, requests: 10, per: 1m }]',
          `rateLimiting: { redis: "${redis.url}", keyPrefix: "t${process.pid}:" }`,
          'logging: { access: false }',
          '',
        ].join('\n'),
      );
      procs.push(await spawnSluice(['serve', '--config', file], `127.0.0.1:${port}/mcp`));
      ports.push(port);
    }
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await up.close();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const post = (i: number, key: string, id = 1) => send(`http://127.0.0.1:${ports[i % 2]}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, authorization: `Bearer ${key}` }, body: call('echo', id) });

  it('two Sluice processes enforce one limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) statuses.push((await post(i, 'key-alice', i)).status);
    assert.deepEqual(statuses, [...Array(10).fill(200), 429, 429, 429, 429]);
    // Bob's bucket is his own in Redis too.
    assert.equal((await post(1, 'key-bob')).status, 200);
    assert.equal(up.requests.length, 11);
  });

  it('fails open when Redis is gone (default), with a warning', async () => {
    await redis.stop();
    assert.equal((await post(0, 'key-alice')).status, 200, 'alice is over her limit, but nobody can tell now');
    await waitFor(() => procs[0]!.stdout().includes('rate-limit store unavailable'), 5000, 'the fail-open warning');
  });
});

describe('rate limits with failOpen: false', () => {
  it('answers 503 while Redis is unreachable', async () => {
    const up = await answering();
    const redis = await startRedis();
    const port = redis.port;
    await redis.stop();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url, rateLimits: [{ by: 'route', requests: 10 }] }], rateLimiting: { redis: `redis://127.0.0.1:${port}`, failOpen: false } });
    try {
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: call('echo') });
      assert.equal(r.status, 503);
      assert.match(r.body.toString(), /rate-limit store unavailable/);
      assert.equal(up.requests.length, 0);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
