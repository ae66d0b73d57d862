// Replica selection, passive ejection, active-check bookkeeping, draining and reload carry-over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema, routeSchema, type ConfigInput } from '../../../src/config/schema.ts';
import { recordCheck } from '../../../src/routing/health-checks.ts';
import { ReplicaPool, type Replica } from '../../../src/routing/replica-pool.ts';
import { findSessionParam, replaceParam } from '../../../src/session/query-session.ts';

const A = 'http://127.0.0.1:3001/mcp';
const B = 'http://127.0.0.1:3002/mcp';
const C = 'http://127.0.0.1:3003/mcp';
type RouteInput = ConfigInput['routes'][number];
const route = (extra: Partial<RouteInput> = {}) => routeSchema.parse({ path: '/mcp', upstream: [A, B, C], ...extra });
const ids = (picks: (string | undefined)[]) => picks.map((p) => p?.split(':')[2]?.slice(0, 4));

describe('replica pool', () => {
  it('round robin visits every replica in turn and skips those that take no new work', () => {
    const pool = new ReplicaPool(route());
    assert.deepEqual(ids(Array.from({ length: 6 }, () => pool.pick()?.id)), ['3001', '3002', '3003', '3001', '3002', '3003']);
    (pool.find(B) as NonNullable<ReturnType<typeof pool.find>>).healthy = false;
    assert.deepEqual(ids(Array.from({ length: 4 }, () => pool.pick()?.id)), ['3001', '3003', '3001', '3003']);
  });

  it('least outstanding picks the least loaded, ties in rotation', () => {
    const pool = new ReplicaPool(route({ balance: 'least-outstanding' }));
    const [a, b, c] = pool.replicas;
    assert.ok(a && b && c);
    a.outstanding = 3;
    b.outstanding = 1;
    c.outstanding = 2;
    assert.equal(pool.pick(), b);
    b.outstanding = 5;
    assert.equal(pool.pick(), c);
    a.outstanding = b.outstanding = c.outstanding = 0;
    const seen = new Set(Array.from({ length: 3 }, () => pool.pick()));
    assert.equal(seen.size, 3, 'equal load rotates');
  });

  it('ejects after consecutive failures for the configured time; a success resets the count', () => {
    const pool = new ReplicaPool(route({ ejection: { consecutiveFailures: 3, duration: '10s' } }));
    const a = pool.find(A);
    assert.ok(a);
    const t0 = 1_000_000;
    assert.equal(pool.failed(a, t0), false);
    assert.equal(pool.failed(a, t0), false);
    pool.succeeded(a);
    assert.equal(pool.failed(a, t0), false);
    assert.equal(pool.failed(a, t0), false);
    assert.equal(pool.failed(a, t0), true, 'third consecutive failure ejects');
    assert.equal(pool.owner(A, t0 + 1), a, 'an ejected owner keeps its sessions (ejection only keeps new work away)');
    for (let i = 0; i < 6; i++) assert.notEqual(pool.pick(t0 + 1), a);
    const picked = new Set([0, 1, 2].map(() => pool.pick(t0 + 10_001)));
    assert.ok(picked.has(a), 'back in rotation after the ejection time');
  });

  it('never ejects the last replica that takes new work', () => {
    const pool = new ReplicaPool(route({ ejection: { consecutiveFailures: 1, duration: '10s' } }));
    const t0 = 2_000_000;
    const [a, b, c] = pool.replicas;
    assert.ok(a && b && c);
    assert.equal(pool.failed(a, t0), true);
    assert.equal(pool.failed(b, t0), true);
    assert.equal(pool.failed(c, t0), false, 'c is the last one: kept');
    assert.equal(pool.failed(c, t0), false);
    assert.equal(pool.pick(t0 + 1), c);
    const lone = new ReplicaPool(routeSchema.parse({ path: '/mcp', upstream: A, ejection: { consecutiveFailures: 1 } }));
    const only = lone.replicas[0];
    assert.ok(only);
    for (let i = 0; i < 10; i++) assert.equal(lone.failed(only, t0), false);
    assert.equal(lone.pick(t0), only);
  });

  it('a replica that active checks call down ends its sessions only when another replica takes new ones', () => {
    const pool = new ReplicaPool(route());
    const [a, b, c] = pool.replicas;
    assert.ok(a && b && c);
    a.healthy = false;
    assert.equal(pool.owner(A), undefined, 'others are up: the session starts over there');
    b.healthy = false;
    c.healthy = false;
    assert.equal(pool.owner(A), a, 'nowhere else to go: the session waits for its owner');
  });

  it('answers no replica when none takes new work, with a Retry-After of the soonest return', () => {
    const pool = new ReplicaPool(route({ ejection: { consecutiveFailures: 1, duration: '7s' } }));
    const t0 = 5_000_000;
    for (const r of pool.replicas) pool.failed(r, t0);
    (pool.replicas[2] as (typeof pool.replicas)[number]).healthy = false; // the one ejection kept: down by active checks
    assert.equal(pool.pick(t0 + 1000), undefined);
    assert.equal(pool.retryAfter(t0 + 1000), 6);
    assert.equal(pool.retryAfter(t0 + 6999), 1, 'never below one second');
  });

  it('pickAnyway: with none taking new work, still offers the down and ejected ones in rotation, never removed or draining ones', () => {
    const pool = new ReplicaPool(route());
    const [a, b, c] = pool.replicas as [Replica, Replica, Replica];
    a.healthy = false;
    b.ejectedUntil = Date.now() + 60_000;
    c.draining = true;
    assert.equal(pool.pick(), undefined);
    const seen = [pool.pickAnyway(), pool.pickAnyway(), pool.pickAnyway(), pool.pickAnyway()];
    assert.deepEqual(new Set(seen), new Set([a, b]));
    assert.equal(pool.pickAnyway([a, b]), undefined, 'the ones already tried are skipped');
    a.removed = true;
    assert.equal(pool.pickAnyway([b]), undefined);
  });

  it('a draining replica keeps its sessions until the deadline but takes no new ones', () => {
    const t0 = 10_000_000;
    const first = new ReplicaPool(route(), undefined, t0);
    const cfg = routeSchema.parse({ path: '/mcp', upstream: [A, { url: B, draining: true }, C], drainTimeout: '60s' });
    const pool = new ReplicaPool(cfg, first, t0);
    const b = pool.find(B);
    assert.ok(b && b === first.find(B), 'state carries over a reload');
    assert.equal(b.drainDeadline, t0 + 60_000);
    for (let i = 0; i < 6; i++) assert.notEqual(pool.pick(t0), b);
    assert.equal(pool.owner(B, t0 + 59_999), b);
    assert.equal(pool.owner(B, t0 + 60_000), undefined);
    assert.equal(new ReplicaPool(cfg, pool, t0 + 30_000).find(B)?.drainDeadline, t0 + 60_000, 'a second reload keeps the deadline');
  });

  it('marks replicas a reload removed, and a changed URL under the same id is a new replica', () => {
    const first = new ReplicaPool(route());
    const next = new ReplicaPool(routeSchema.parse({ path: '/mcp', upstream: [A, B] }), first);
    assert.equal(first.find(C)?.removed, true);
    assert.equal(next.owner(C), undefined);
    const moved = new ReplicaPool(routeSchema.parse({ path: '/mcp', upstream: [{ url: C, id: 'one' }] }), new ReplicaPool(routeSchema.parse({ path: '/mcp', upstream: [{ url: A, id: 'one' }] })));
    assert.equal(moved.find('one')?.url.href, C);
  });

  it('counts active checks against the thresholds', () => {
    const pool = new ReplicaPool(route());
    const a = pool.find(A);
    assert.ok(a);
    const hc = route({ healthCheck: { unhealthyThreshold: 2, healthyThreshold: 2 } }).healthCheck;
    assert.equal(recordCheck(a, false, hc), false);
    assert.equal(recordCheck(a, false, hc), true);
    assert.equal(a.healthy, false);
    assert.equal(recordCheck(a, true, hc), false);
    assert.equal(recordCheck(a, false, hc), false, 'a failure resets the passes');
    assert.equal(recordCheck(a, true, hc), false);
    assert.equal(recordCheck(a, true, hc), true);
    assert.equal(a.healthy, true);
  });
});

describe('route config', () => {
  it('takes one URL, a list, or objects with ids; refuses duplicates and bad ids', () => {
    assert.deepEqual(routeSchema.parse({ path: '/m', upstream: A }).upstream, [{ url: A, id: A, draining: false }]);
    assert.deepEqual(
      routeSchema.parse({ path: '/m', upstream: [A, { url: B, id: 'b-1', draining: true }] }).upstream.map((u) => u.id),
      [A, 'b-1'],
    );
    const bad = configSchema.safeParse({ routes: [{ path: '/m', upstream: [A, A] }] });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /duplicate replica/);
    assert.equal(configSchema.safeParse({ routes: [{ path: '/m', upstream: [{ url: A, id: 'has space' }] }] }).success, false);
    assert.equal(configSchema.safeParse({ routes: [{ path: '/m', upstream: [] }] }).success, false);
  });
});

describe('HTTP+SSE session parameter', () => {
  it('finds sessionId or session_id and replaces only its value', () => {
    const q = '?a=1&sessionId=abc%2D1&b=2';
    const p = findSessionParam(q);
    assert.equal(p?.value, 'abc%2D1');
    assert.equal(replaceParam(q, p!, 'TOKEN'), '?a=1&sessionId=TOKEN&b=2');
    assert.equal(findSessionParam('?session_id=x')?.value, 'x');
    assert.equal(findSessionParam('?xsessionId=1&other=2'), undefined);
    assert.equal(findSessionParam(''), undefined);
    assert.equal(findSessionParam('?sessionId'), undefined);
    assert.equal(findSessionParam('?sessionId=')?.value, '');
  });
});
