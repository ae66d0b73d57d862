// The pool of upstream sessions 2026-07-28 callers are served on (session-pool.ts), without
// sockets: an opener that hands out stand-in clients. Sessions never cross keys; calls that may
// be asked something hold one alone; the bounds; an anonymous caller's session serves one lease
// and is ended; a held session can be reclaimed when every one is in use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { SessionPool, type PooledSession } from '../../../src/broker/session-pool.ts';

interface Stand {
  id: number;
  closed: boolean;
}

function pool(limits: { perCaller: number; total: number; idleMs?: number; disposable?: (k: string) => boolean }) {
  const opened: Stand[] = [];
  const p = new SessionPool<undefined>(
    { idleMs: 60_000, ...limits },
    async () => {
      const s: Stand = { id: opened.length + 1, closed: false };
      opened.push(s);
      return { transport: undefined, close: async () => void (s.closed = true) } as unknown as Client;
    },
  );
  return { p, opened };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SessionPool', () => {
  it('never lends a session across keys; an exclusive lease gets one of its own while the key has room', async () => {
    const { p, opened } = pool({ perCaller: 2, total: 10 });
    const a1 = await p.lease('p:a', true, undefined);
    const a2 = await p.lease('p:a', true, undefined);
    const b1 = await p.lease('p:b', false, undefined);
    assert.notEqual(a1, a2);
    assert.notEqual(a1, b1);
    assert.equal(opened.length, 3);
    // The key is full: a third exclusive lease shares the least busy of its own sessions, never b's.
    const a3 = await p.lease('p:a', true, undefined);
    assert.ok(a3 === a1 || a3 === a2);
    p.release(a1, true);
    const again = await p.lease('p:a', false, undefined);
    assert.ok(again === a1 || again === a2);
    await p.close();
    assert.ok(opened.every((s) => s.closed), 'close ends every session');
  });

  it('over the total: an idle session is evicted; with none idle, the reclaimer frees one; else a JSON-RPC error names the limit', async () => {
    const { p } = pool({ perCaller: 4, total: 2 });
    const x = await p.lease('p:x', true, undefined);
    const y = await p.lease('p:y', true, undefined);
    await assert.rejects(p.lease('p:z', true, undefined), /bridge\.maxSessions/);
    let asked = 0;
    p.reclaim = async () => {
      asked++;
      p.discard(x);
      return true;
    };
    const z = await p.lease('p:z', true, undefined);
    assert.equal(asked, 1);
    assert.ok(x.closed && !z.closed);
    p.reclaim = undefined;
    p.release(y, true);
    const w = await p.lease('p:w', false, undefined);
    assert.ok(y.closed, 'the idle one was evicted for the new key');
    assert.ok(!w.closed);
    await p.close();
  });

  it("an anonymous caller's session serves its lease and is then ended, never lent again", async () => {
    const { p, opened } = pool({ perCaller: 4, total: 10, disposable: (k) => k.startsWith('anon:') });
    const s: PooledSession = await p.lease('anon:1', true, undefined);
    p.release(s, true);
    await sleep(700);
    assert.ok(s.closed);
    assert.equal(p.size, 0);
    assert.ok(opened[0]?.closed);
    const kept = await p.lease('p:kept', false, undefined);
    p.release(kept, false);
    await sleep(700);
    assert.ok(!kept.closed, "a principal's session stays pooled");
    await p.close();
  });
});
