// X-Forwarded-* and Forwarded: trust what arrives only from configured proxies; always append
// the real peer. Trusted sets are built once with node's BlockList.
import { BlockList, isIP } from 'node:net';

export function trustList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    if (!addr) continue;
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

export function isTrusted(list: BlockList, peer: string | undefined): boolean {
  if (!peer) return false;
  const plain = peer.startsWith('::ffff:') && isIP(peer.slice(7)) === 4 ? peer.slice(7) : peer;
  const family = isIP(plain);
  if (family === 0) return false;
  return list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

export interface ForwardedIn {
  peer: string | undefined;
  trusted: boolean;
  proto: 'http' | 'https';
  host: string | undefined;
  xff: string | undefined;
  xfProto: string | undefined;
  xfHost: string | undefined;
  forwarded: string | undefined;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function quoteNode(ip: string): string {
  return isIP(ip) === 6 ? `"[${ip}]"` : ip;
}

/** The X-Forwarded-* and Forwarded headers to send upstream. */
export function forwardedHeaders(f: ForwardedIn): Record<string, string> {
  const peer = f.peer ?? 'unknown';
  const priorXff = f.trusted ? f.xff : undefined;
  const proto = (f.trusted && f.xfProto?.split(',')[0]?.trim()) || f.proto;
  const host = (f.trusted && f.xfHost?.split(',')[0]?.trim()) || f.host;
  const element = `for=${quoteNode(peer)};proto=${proto}${host ? `;host="${host.replace(/["\\]/g, '')}"` : ''}`;
  const priorForwarded = f.trusted ? f.forwarded : undefined;
  const out: Record<string, string> = {
    'x-forwarded-for': priorXff ? `${priorXff}, ${peer}` : peer,
    'x-forwarded-proto': proto,
    forwarded: priorForwarded ? `${priorForwarded}, ${element}` : element,
  };
  if (host) out['x-forwarded-host'] = host;
  return out;
}

export function readForwarded(
  headers: Record<string, string | string[] | undefined>,
  peer: string | undefined,
  trusted: boolean,
  encrypted: boolean,
): ForwardedIn {
  return {
    peer,
    trusted,
    proto: encrypted ? 'https' : 'http',
    host: one(headers['host']),
    xff: one(headers['x-forwarded-for']),
    xfProto: one(headers['x-forwarded-proto']),
    xfHost: one(headers['x-forwarded-host']),
    forwarded: one(headers['forwarded']),
  };
}

/** The scheme and host the client used: from a trusted proxy's X-Forwarded-Proto/Host, else this hop's. */
export function publicOrigin(f: ForwardedIn): string {
  const proto = (f.trusted && f.xfProto?.split(',')[0]?.trim()) || f.proto;
  const host = (f.trusted && f.xfHost?.split(',')[0]?.trim()) || f.host || 'localhost';
  return `${proto === 'https' ? 'https' : 'http'}://${host}`;
}

/**
 * The client's address: walking the hops a trusted peer reports (X-Forwarded-For, else RFC 7239
 * Forwarded `for=`) from the nearest back, the first one that is not itself a trusted proxy. So
 * clients behind a chain of trusted load balancers are told apart, and an address a client
 * wrote into the header itself (left of the first untrusted hop) is never believed.
 */
export function clientAddress(f: ForwardedIn, trusted?: BlockList): string {
  const peer = f.peer || 'unknown';
  if (!f.trusted) return peer;
  const hops = f.xff ? f.xff.split(',').map((h) => h.trim()) : f.forwarded ? forwardedFor(f.forwarded) : [];
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (isIP(hop) === 0) break; // unknown, obfuscated or garbage: stop at the last address we can vouch for
    client = hop;
    if (!trusted || !isTrusted(trusted, hop)) break;
  }
  return client;
}

/** The `for=` nodes of a Forwarded header, in order, as plain addresses (brackets, quotes and ports removed). */
export function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      if (v.startsWith('[')) v = v.slice(1, v.indexOf(']') === -1 ? undefined : v.indexOf(']'));
      else if (v.indexOf(':') !== -1 && v.indexOf(':') === v.lastIndexOf(':')) v = v.slice(0, v.indexOf(':'));
      out.push(v);
    }
  }
  return out;
}
