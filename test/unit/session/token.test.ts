// The session-token codec: round trips, and nothing but an intact token under a listed key and the
// same principal ever opens (tamper, truncation, foreign key, rotation, replay, garbage).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { KeyRing, KeyRingError, newKeyText } from '../../../src/session/key-ring.ts';
import { hashPrincipal, MAX_VALUE, open, openSession, seal, sealSession, TokenError, type SealedClaims, type SessionClaims } from '../../../src/session/token.ts';

const K1 = newKeyText();
const K2 = newKeyText();
const ring = KeyRing.parse(K1);
const alice = hashPrincipal('https://issuer.example|alice');
const bob = hashPrincipal('https://issuer.example|bob');
const claims: SessionClaims = { route: '/mcp', replica: 'http://127.0.0.1:3001/mcp', upstreamSession: 'a1b2c3d4-e5f6', principal: undefined, issuedAt: 1_790_000_000 };

describe('session tokens', () => {
  it('new keys are never written with a leading "-" (it would read as an option after --keys)', () => {
    for (let i = 0; i < 2000; i++) {
      const k = newKeyText();
      assert.ok(!k.startsWith('-'), k);
      assert.equal(Buffer.from(k, 'base64url').length, 32);
    }
  });

  it('round-trips claims, with and without a principal, as visible ASCII', () => {
    const t = sealSession(ring, claims);
    assert.match(t, /^[\x21-\x7e]+$/);
    assert.deepEqual(openSession(ring, t), claims);
    const bound = { ...claims, route: '/tenants/ü', principal: alice, upstreamSession: 'x'.repeat(1024) };
    assert.deepEqual(openSession(ring, sealSession(ring, bound), alice), bound);
    assert.throws(() => sealSession(ring, { ...claims, upstreamSession: 'x'.repeat(1025) }), TokenError);
  });

  it('never repeats a nonce: equal claims seal to different tokens', () => {
    const seen = new Set(Array.from({ length: 2000 }, () => sealSession(ring, claims)));
    assert.equal(seen.size, 2000);
  });

  it('refuses every single-bit flip and every truncation', () => {
    const raw = Buffer.from(sealSession(ring, { ...claims, principal: alice }), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const t = Buffer.from(raw);
        t[i] = (t[i] as number) ^ (1 << bit);
        assert.equal(openSession(ring, t.toString('base64url'), alice), undefined, `flip byte ${i} bit ${bit}`);
      }
    }
    for (let n = 0; n < raw.length; n++) assert.equal(openSession(ring, raw.subarray(0, n).toString('base64url'), alice), undefined, `truncated to ${n}`);
    assert.equal(openSession(ring, Buffer.concat([raw, Buffer.from([0])]).toString('base64url'), alice), undefined, 'extended');
  });

  it('opens only under a listed key: rotation keeps old tokens while the old key is listed', () => {
    const old = sealSession(KeyRing.parse(K1), claims);
    const rotated = KeyRing.parse(`${K2},${K1}`);
    assert.deepEqual(openSession(rotated, old), claims, 'old key still listed');
    const fresh = sealSession(rotated, claims);
    assert.deepEqual(openSession(KeyRing.parse(K2), fresh), claims, 'new tokens use the newest key');
    assert.equal(openSession(KeyRing.parse(K1), fresh), undefined);
    assert.equal(openSession(KeyRing.parse(K2), old), undefined, 'old key removed');
    assert.equal(openSession(KeyRing.generate(), old), undefined, 'foreign key');
  });

  it('refuses a token replayed under another principal, or across bound and anonymous', () => {
    const forAlice = sealSession(ring, { ...claims, principal: alice });
    assert.equal(openSession(ring, forAlice, bob), undefined);
    assert.equal(openSession(ring, forAlice), undefined);
    assert.equal(openSession(ring, sealSession(ring, claims), alice), undefined);
  });

  it('never throws on garbage', () => {
    for (const t of ['', 'a', '!!!!', 'AAAA'.repeat(600), 'Zm9v', '==', 'a b', '\u0000', 'AQAAAAA']) assert.equal(openSession(ring, t), undefined);
    for (let i = 0; i < 3000; i++) {
      const t = randomBytes(1 + (i % 120)).toString('base64url');
      assert.equal(openSession(ring, t), undefined);
    }
  });

  it('parses SLUICE_SESSION_KEYS strictly (base64url, 32 bytes, no duplicates, newest first)', () => {
    const r = KeyRing.parse(` ${K2} , ${K1} `);
    assert.equal(r.keys.length, 2);
    assert.ok(r.sealing.key.export().equals(Buffer.from(K2, 'base64url')));
    assert.throws(() => KeyRing.parse(''), KeyRingError);
    assert.throws(() => KeyRing.parse('not*base64'), KeyRingError);
    assert.throws(() => KeyRing.parse(randomBytes(16).toString('base64url')), /16 bytes/);
    assert.throws(() => KeyRing.parse(`${K1},${K1}`), /same key twice/);
    assert.equal(KeyRing.generate().ephemeral, true);
  });
});

describe('sealed tokens of other kinds (requestState, task ids)', () => {
  const state: SealedClaims = { kind: 'request-state', route: '/mcp', replica: 'a', value: 'v1.eyJwIjp7fX0.sig', principal: alice, issuedAt: 1_790_000_000 };

  it('open only as their own kind: a session token is no requestState, a requestState no task id', () => {
    const t = seal(ring, state);
    assert.deepEqual(open(ring, 'request-state', t, alice), state);
    assert.equal(open(ring, 'task', t, alice), undefined);
    assert.equal(open(ring, 'session', t, alice), undefined);
    assert.equal(openSession(ring, t, alice), undefined);
    const s = sealSession(ring, claims);
    assert.equal(open(ring, 'request-state', s), undefined);
    assert.equal(open(ring, 'session', s)?.value, claims.upstreamSession);
    assert.equal(open(ring, 'request-state', t, bob), undefined, 'bound to its principal');
  });

  it('task ids seal deterministically (the one task reads the same in every answer); requestStates do not', () => {
    const task: SealedClaims = { ...state, kind: 'task', value: '786512e2-9e0d-44bd-8f29-789f320fe840', issuedAt: 0 };
    assert.equal(seal(ring, task, true), seal(ring, task, true));
    assert.notEqual(seal(ring, task, true), seal(ring, { ...task, replica: 'b' }, true));
    assert.notEqual(seal(ring, task, true), seal(ring, { ...task, value: `${task.value}x` }, true));
    assert.notEqual(seal(ring, state), seal(ring, state));
    assert.deepEqual(open(ring, 'task', seal(ring, task, true), alice), task);
  });

  it('a requestState may be long (48 KiB); longer is refused, never truncated', () => {
    const long = { ...state, value: 'x'.repeat(MAX_VALUE['request-state']) };
    assert.equal(open(ring, 'request-state', seal(ring, long), alice)?.value.length, MAX_VALUE['request-state']);
    assert.throws(() => seal(ring, { ...long, value: `${long.value}x` }), TokenError);
  });
});
