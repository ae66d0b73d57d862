// Sealed tokens: what Sluice hands to clients in place of an upstream's own handle to state kept on
// one replica. Session ids (Mcp-Session-Id) and, on 2026-07-28 routes with several replicas, the
// requestState of a multi-round call and Tasks-extension task ids; federated list cursors.
// AES-256-GCM over {kind, route, replica, upstream value, principal hash, issue time}, so any
// Sluice replica holding the key routes it with no shared store, the upstream's value never
// reaches the client, a token replayed under another principal does not open, and a token of one
// kind never opens as another.
//
// Wire form (base64url: visible ASCII as Mcp-Session-Id and Mcp-Name require):
//   version (1) | key id (4) | nonce (12) | ciphertext | tag (16)
// version and key id are authenticated as additional data. Plaintext:
//   flags (1: bit0 principal present, bits 1-2 kind) | issued at, seconds (4) | [principal hash (16)]
//   | route (u8 length + UTF-8) | replica (u8 length + UTF-8) | upstream value (u16 length + UTF-8)
// Kind 0 is a session, so tokens sealed before kinds existed open as what they were.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomFillSync } from 'node:crypto';
import type { KeyRing, SessionKey } from './key-ring.ts';

const VERSION = 1;
const HEADER = 1 + 4;
const NONCE = 12;
const TAG = 16;
const PRINCIPAL = 16;
const MAX_SHORT = 255;

export type SealedKind = 'session' | 'request-state' | 'task' | 'cursor';
/** The kinds a relay route pins a request to a replica by (a cursor is a federated route's own). */
export type PinKind = Exclude<SealedKind, 'cursor'>;
const KIND_BITS: Record<SealedKind, number> = { session: 0, 'request-state': 1, task: 2, cursor: 3 };
/** The longest upstream value each kind seals: a requestState may carry a round's answers. */
export const MAX_VALUE: Record<SealedKind, number> = {
  session: 1024,
  'request-state': 48 * 1024,
  task: 1024,
  // A federated list's cursor: each server's own cursor (at most MEMBER_CURSOR bytes each, federation-names.ts).
  cursor: 64 * 1024,
};
const maxToken = (kind: SealedKind): number =>
  Math.ceil(((HEADER + NONCE + TAG + 5 + PRINCIPAL + 2 + 2 * MAX_SHORT + 2 + MAX_VALUE[kind]) * 4) / 3);

export interface SessionClaims {
  /** The public route path the session belongs to. */
  route: string;
  /** The upstream replica that minted the session. */
  replica: string;
  /** The upstream's own Mcp-Session-Id (or HTTP+SSE sessionId). */
  upstreamSession: string;
  /** hashPrincipal() of the authenticated caller, or undefined for anonymous sessions. */
  principal: Buffer | undefined;
  /** Unix seconds. */
  issuedAt: number;
}

export class TokenError extends Error {}

/** A 16-byte digest of the authenticated principal (issuer + subject, say); never the principal itself. */
export function hashPrincipal(principal: string): Buffer {
  return createHash('sha256').update('sluice principal\0').update(principal).digest().subarray(0, PRINCIPAL);
}

// Nonces come from a pre-filled random pool: one getrandom() per 341 tokens instead of one each.
const pool = Buffer.alloc(NONCE * 341);
let poolOffset = pool.length;
function nonce(): Buffer {
  if (poolOffset + NONCE > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  // A view, not a copy: the cipher takes its own copy and the token is concatenated before the
  // pool is ever refilled.
  const n = pool.subarray(poolOffset, poolOffset + NONCE);
  poolOffset += NONCE;
  return n;
}

/** What a token of any kind carries. */
export interface SealedClaims {
  kind: SealedKind;
  route: string;
  replica: string;
  /** The upstream's own value: session id, requestState or task id. */
  value: string;
  principal: Buffer | undefined;
  issuedAt: number;
}

export function sealSession(ring: KeyRing, c: SessionClaims): string {
  return seal(ring, { kind: 'session', ...c, value: c.upstreamSession });
}

/**
 * The claims of a session token sealed by a key still in the ring, or undefined for anything
 * else: malformed, tampered, truncated, unknown key, another kind, or bound to another principal
 * than `principal`. Callers answer undefined with 404 and no upstream call.
 */
export function openSession(ring: KeyRing, token: string, principal?: Buffer): SessionClaims | undefined {
  const c = open(ring, 'session', token, principal);
  return (
    c && { route: c.route, replica: c.replica, upstreamSession: c.value, principal: c.principal, issuedAt: c.issuedAt }
  );
}

/**
 * Seal any kind. `deterministic`: the nonce is derived from the key and the plaintext (a
 * synthetic IV), so the same claims always give the same token. Task ids need that: the one task
 * comes back in several answers (its creation, every tasks/get, notifications) and a client
 * compares them. Equal tokens reveal only that the claims are equal; distinct plaintexts never
 * share a nonce.
 */
export function seal(ring: KeyRing, c: SealedClaims, deterministic = false): string {
  const route = Buffer.byteLength(c.route, 'utf8');
  const replica = Buffer.byteLength(c.replica, 'utf8');
  const value = Buffer.byteLength(c.value, 'utf8');
  if (route > MAX_SHORT || replica > MAX_SHORT) throw new TokenError('route or replica name longer than 255 bytes');
  const max = MAX_VALUE[c.kind];
  if (value > max)
    throw new TokenError(`upstream ${c.kind === 'session' ? 'session id' : c.kind} longer than ${max} bytes`);
  if (c.principal && c.principal.length !== PRINCIPAL) throw new TokenError('principal hash must be 16 bytes');
  // The strings are written straight into the plaintext: no Buffer of their own per token.
  const plain = Buffer.allocUnsafe(1 + 4 + (c.principal ? PRINCIPAL : 0) + 1 + route + 1 + replica + 2 + value);
  let o = plain.writeUInt8((c.principal ? 1 : 0) | (KIND_BITS[c.kind] << 1), 0);
  o = plain.writeUInt32BE(c.issuedAt >>> 0, o);
  if (c.principal) o += c.principal.copy(plain, o);
  o = plain.writeUInt8(route, o);
  o += plain.write(c.route, o, 'utf8');
  o = plain.writeUInt8(replica, o);
  o += plain.write(c.replica, o, 'utf8');
  o = plain.writeUInt16BE(value, o);
  plain.write(c.value, o, 'utf8');

  const key = ring.sealing;
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt8(VERSION, 0);
  key.id.copy(header, 1);
  const iv = deterministic ? syntheticNonce(key, header, plain) : nonce();
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(header);
  const body = cipher.update(plain);
  cipher.final();
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url');
}

function syntheticNonce(key: SessionKey, header: Buffer, plain: Buffer): Buffer {
  return createHmac('sha256', key.nonceKey).update(header).update(plain).digest().subarray(0, NONCE);
}

/** The claims of a token of `kind`, or undefined for anything else (see openSession). */
export function open(ring: KeyRing, kind: SealedKind, token: string, principal?: Buffer): SealedClaims | undefined {
  if (token.length > maxToken(kind) || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < HEADER + NONCE + TAG + 1 || raw[0] !== VERSION) return undefined;
  const key = ring.find(raw.readUInt32BE(1));
  if (!key) return undefined;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(HEADER, HEADER + NONCE));
    decipher.setAAD(raw.subarray(0, HEADER));
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    plain = decipher.update(raw.subarray(HEADER + NONCE, raw.length - TAG));
    decipher.final(); // GCM gives nothing more here; it throws when the tag does not match
  } catch {
    return undefined;
  }
  const claims = parsePlain(plain);
  if (!claims || claims.kind !== kind) return undefined;
  const bound = claims.principal;
  if (bound === undefined ? principal !== undefined : principal === undefined || !bound.equals(principal))
    return undefined;
  return claims;
}

const KINDS: readonly (SealedKind | undefined)[] = ['session', 'request-state', 'task', 'cursor'];

// Authenticated bytes can only be malformed through a bug or a foreign encoder; still never throw.
function parsePlain(p: Buffer): SealedClaims | undefined {
  try {
    let o = 0;
    const flags = p.readUInt8(o++);
    const kind = KINDS[(flags >> 1) & 3];
    if (kind === undefined) return undefined;
    const issuedAt = p.readUInt32BE(o);
    o += 4;
    let principal: Buffer | undefined;
    if (flags & 1) {
      principal = Buffer.from(p.subarray(o, o + PRINCIPAL));
      o += PRINCIPAL;
    }
    const rl = p.readUInt8(o++);
    const route = p.toString('utf8', o, o + rl);
    o += rl;
    const pl = p.readUInt8(o++);
    const replica = p.toString('utf8', o, o + pl);
    o += pl;
    const sl = p.readUInt16BE(o);
    o += 2;
    if (o + sl !== p.length) return undefined;
    return { kind, route, replica, value: p.toString('utf8', o, o + sl), principal, issuedAt };
  } catch {
    return undefined;
  }
}
