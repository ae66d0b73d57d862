// Session tokens: the Mcp-Session-Id Sluice hands to clients in place of the upstream's own.
// AES-256-GCM over {route, replica, upstream session id, principal hash, issue time}, so any
// Sluice replica holding the key routes the session with no shared store, the upstream's id never
// reaches the client, and a token replayed under another principal does not open.
//
// Wire form (base64url, visible ASCII as Mcp-Session-Id requires):
//   version (1) | key id (4) | nonce (12) | ciphertext | tag (16)
// version and key id are authenticated as additional data. Plaintext:
//   flags (1: bit0 principal present) | issued at, seconds (4) | [principal hash (16)]
//   | route (u8 length + UTF-8) | replica (u8 length + UTF-8) | upstream session id (u16 length + UTF-8)
import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto';
import type { KeyRing } from './key-ring.ts';

const VERSION = 1;
const HEADER = 1 + 4;
const NONCE = 12;
const TAG = 16;
const PRINCIPAL = 16;
const MAX_SHORT = 255;
const MAX_SESSION_ID = 1024;

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
  const n = Buffer.from(pool.subarray(poolOffset, poolOffset + NONCE));
  poolOffset += NONCE;
  return n;
}

export function sealSession(ring: KeyRing, c: SessionClaims): string {
  const route = Buffer.from(c.route, 'utf8');
  const replica = Buffer.from(c.replica, 'utf8');
  const sid = Buffer.from(c.upstreamSession, 'utf8');
  if (route.length > MAX_SHORT || replica.length > MAX_SHORT)
    throw new TokenError('route or replica name longer than 255 bytes');
  if (sid.length > MAX_SESSION_ID) throw new TokenError(`upstream session id longer than ${MAX_SESSION_ID} bytes`);
  if (c.principal && c.principal.length !== PRINCIPAL) throw new TokenError('principal hash must be 16 bytes');
  const plain = Buffer.allocUnsafe(
    1 + 4 + (c.principal ? PRINCIPAL : 0) + 1 + route.length + 1 + replica.length + 2 + sid.length,
  );
  let o = plain.writeUInt8(c.principal ? 1 : 0, 0);
  o = plain.writeUInt32BE(c.issuedAt >>> 0, o);
  if (c.principal) o += c.principal.copy(plain, o);
  o = plain.writeUInt8(route.length, o);
  o += route.copy(plain, o);
  o = plain.writeUInt8(replica.length, o);
  o += replica.copy(plain, o);
  o = plain.writeUInt16BE(sid.length, o);
  sid.copy(plain, o);

  const key = ring.sealing;
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt8(VERSION, 0);
  key.id.copy(header, 1);
  const iv = nonce();
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(header);
  const body = cipher.update(plain);
  cipher.final();
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url');
}

/**
 * The claims of a token sealed by a key still in the ring, or undefined for anything else:
 * malformed, tampered, truncated, unknown key, or bound to another principal than `principal`.
 * Callers answer undefined with 404 and no upstream call.
 */
export function openSession(ring: KeyRing, token: string, principal?: Buffer): SessionClaims | undefined {
  if (token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < HEADER + NONCE + TAG + 1 || raw[0] !== VERSION) return undefined;
  const key = ring.find(raw.readUInt32BE(1));
  if (!key) return undefined;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(HEADER, HEADER + NONCE));
    decipher.setAAD(raw.subarray(0, HEADER));
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    plain = Buffer.concat([decipher.update(raw.subarray(HEADER + NONCE, raw.length - TAG)), decipher.final()]);
  } catch {
    return undefined;
  }
  const claims = parsePlain(plain);
  if (!claims) return undefined;
  const bound = claims.principal;
  if (bound === undefined ? principal !== undefined : principal === undefined || !bound.equals(principal))
    return undefined;
  return claims;
}

// Authenticated bytes can only be malformed through a bug or a foreign encoder; still never throw.
function parsePlain(p: Buffer): SessionClaims | undefined {
  try {
    let o = 0;
    const flags = p.readUInt8(o++);
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
    return { route, replica, upstreamSession: p.toString('utf8', o, o + sl), principal, issuedAt };
  } catch {
    return undefined;
  }
}
