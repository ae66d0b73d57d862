// Parked calls (input-park.ts): an upstream's questions become a caller's rounds; a retry that
// leaves some unanswered is asked them again at once; who may take a parked call back; the hold
// after which another caller may take its session; expiry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParkedCall, Parking } from '../../../src/broker/input-park.ts';

const never = new AbortController().signal;

describe('ParkedCall', () => {
  it("rounds: the upstream's questions, then the result once they are answered", async () => {
    const call = new ParkedCall('p:alice', { method: 'tools/call' });
    let release!: (v: unknown) => void;
    call.run(new Promise((r) => (release = r)));
    const asked = call.ask('elicitation/create', { message: 'name?' }, never);
    const first = await call.next(never);
    assert.equal(first.kind, 'asks');
    const key = first.kind === 'asks' ? first.asks[0]!.key : '';
    assert.match(key, /^elicitation_create_1$/);
    assert.deepEqual(call.answer({ [key]: { action: 'accept' } }), []);
    assert.deepEqual(await asked, { action: 'accept' });
    release({ content: [] });
    assert.deepEqual(await call.next(never), { kind: 'done', result: { content: [] } });
  });

  it('a retry that answers nothing is asked the same questions again at once', async () => {
    const call = new ParkedCall('anon:1', { method: 'tools/call' });
    call.run(new Promise(() => undefined));
    void call.ask('sampling/createMessage', {}, never);
    await call.next(never);
    assert.deepEqual(call.answer({}), ['sampling_createMessage_1']);
    const again = await call.next(never);
    assert.equal(again.kind, 'asks');
    assert.deepEqual(again.kind === 'asks' && again.asks.map((a) => a.key), ['sampling_createMessage_1']);
  });

  it("cancel refuses the upstream's questions and aborts the call", async () => {
    const call = new ParkedCall('p:a', { method: 'tools/call' });
    call.run(new Promise(() => undefined));
    const asked = call.ask('roots/list', undefined, never);
    call.cancel('gone');
    await assert.rejects(asked, /gone/);
    assert.ok(call.abort.signal.aborted);
    assert.equal((await call.next(never)).kind, 'failed');
  });
});

describe('Parking', () => {
  it("a principal's call is its own; an anonymous call is anyone's who holds its sealed id (anonymous)", () => {
    const parking = new Parking(10, 60_000);
    const mine = new ParkedCall('p:alice', { method: 'tools/call' });
    const anon = new ParkedCall('anon:x', { method: 'tools/call' });
    parking.keep(mine);
    parking.keep(anon);
    assert.equal(parking.take(mine.id, 'p:bob'), undefined);
    assert.equal(parking.take(mine.id, 'anon:y'), undefined);
    assert.equal(parking.take(mine.id, 'p:alice'), mine);
    assert.equal(parking.take(anon.id, 'p:alice'), undefined);
    assert.equal(parking.take(anon.id, 'anon:y'), anon);
    parking.close();
  });

  it('reclaim takes the longest-waiting call past its hold, and none before', async () => {
    const parking = new Parking(10, 60_000);
    const a = new ParkedCall('p:a', { method: 'tools/call' });
    const b = new ParkedCall('p:b', { method: 'tools/call' });
    a.run(new Promise(() => undefined));
    b.run(new Promise(() => undefined));
    parking.keep(a);
    await new Promise((r) => setTimeout(r, 5));
    parking.keep(b);
    assert.equal(parking.reclaim(1000), undefined);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(parking.reclaim(20), a);
    assert.ok(a.abort.signal.aborted, 'the reclaimed call is cancelled upstream');
    assert.equal(parking.take(a.id, 'p:a'), undefined, 'its requestState no longer opens');
    assert.equal(parking.size, 1);
    parking.close();
    assert.ok(b.abort.signal.aborted, 'close cancels what is left');
  });

  it('is bounded, and a call whose caller does not come back expires', async () => {
    const parking = new Parking(1, 50);
    const c = new ParkedCall('p:a', { method: 'tools/call' });
    c.run(new Promise(() => undefined));
    parking.keep(c);
    assert.ok(parking.full);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(parking.size, 0);
    assert.ok(c.abort.signal.aborted);
    parking.close();
  });
});
