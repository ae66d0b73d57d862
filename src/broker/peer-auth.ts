// Requests one Sluice instance hands another (peers.ts) are signed with a key derived from the
// session key ring every instance already shares: HMAC-SHA256 over the time, method and path,
// valid for a minute either way, checked against every key in the ring (so a key rotation never
// cuts hand-offs). The peer listener serves nothing unsigned; the public listeners never look at
// the header (it proves nothing there, and is never forwarded on from here).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { KeyRing, SessionKey } from '../session/key-ring.ts';

export const PEER_HEADER = 'x-sluice-peer';
const SKEW_S = 60;

function peerKey(k: SessionKey): Buffer {
  return createHmac('sha256', k.nonceKey).update('sluice peer hand-off v1').digest();
}

function mac(key: Buffer, at: number, method: string, path: string): string {
  return createHmac('sha256', key).update(`${at}\n${method}\n${path}`).digest('base64url');
}

/** The header value for a hand-off of `method path` now. */
export function peerSignature(ring: KeyRing, method: string, path: string): string {
  const at = Math.floor(Date.now() / 1000);
  return `${at}.${mac(peerKey(ring.sealing), at, method, path)}`;
}

/** Whether a request on the peer listener was signed by an instance holding one of our keys, within the minute. */
export function peerSigned(
  ring: KeyRing,
  header: string | string[] | undefined,
  method: string,
  path: string,
): boolean {
  if (typeof header !== 'string') return false;
  const dot = header.indexOf('.');
  const at = Number(header.slice(0, dot));
  if (dot < 1 || !Number.isInteger(at) || Math.abs(Date.now() / 1000 - at) > SKEW_S) return false;
  const given = Buffer.from(header.slice(dot + 1));
  return ring.keys.some((k) => {
    const want = Buffer.from(mac(peerKey(k), at, method, path));
    return want.length === given.length && timingSafeEqual(want, given);
  });
}
