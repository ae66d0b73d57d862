// The request path as the route table must see it, and as it goes upstream. Routing on the raw
// path let `/public/../admin-mcp` (or `%2e%2e`) match the /public route and then be resolved by a
// WHATWG-URL upstream to another route's path, past that route's auth, policy and limits. So the
// path is normalised once, before routing (RFC 3986 §6.2.2: percent-escapes of unreserved
// characters decoded, §5.2.4: dot segments removed), the upstream gets the normalised path, and
// whatever an upstream could still read differently is refused.

export type PathVerdict =
  | {
      ok: true;
      /** The normalised path (no query). */
      path: string;
      /**
       * Lowest segment depth a `..` popped the path to (Infinity when none did): the route check compares it with the
       * route's depth.
       */
      floor: number;
    }
  | { ok: false; reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = /^[0-9A-Fa-f]{2}$/;
const PLAIN = /^[^%\\#.\x00-\x20\x7f]*$/;

/**
 * Normalise an origin-form path. Refused: encoded `/` or `\` (an upstream that decodes before
 * splitting sees other segments than the route table did), a raw `\` (WHATWG URL parsers treat it
 * as `/`), double-encoded dots and separators (`%252e`, for upstreams that decode twice), bad
 * escapes, control characters, a `..` that climbs above the root, and a dot segment behind a path
 * parameter (`..;x`, which servers that strip `;` parameters read as `..`).
 */
export function normalizePath(raw: string): PathVerdict {
  if (!raw.startsWith('/')) return { ok: false, reason: 'path must start with /' };
  // Nearly every request: nothing to decode or resolve.
  if (PLAIN.test(raw)) return { ok: true, path: raw, floor: Infinity };
  let decoded = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return { ok: false, reason: 'control character or space in the path' };
    if (c === 0x5c) return { ok: false, reason: 'backslash in the path' };
    if (c === 0x23) return { ok: false, reason: 'fragment in the request target' };
    if (c !== 0x25) {
      decoded += raw[i];
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { ok: false, reason: 'malformed percent-escape in the path' };
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (ch === '/' || ch === '\\') return { ok: false, reason: 'encoded / or \\ in the path' };
    // Unreserved characters mean the same encoded or not (RFC 3986 §2.3); everything else stays
    // encoded, hex upper-cased so equal paths compare equal.
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  // Checked after one decoding so that `%25%32e` (which is `%252e` once unreserved escapes are
  // decoded) is caught as well as `%252e`.
  if (/%25(?:2e|2f|5c)/i.test(decoded)) return { ok: false, reason: 'double-encoded dot or separator in the path' };
  if (!decoded.includes('.')) return { ok: true, path: decoded, floor: Infinity };
  const segments = decoded.slice(1).split('/');
  const out: string[] = [];
  let floor = Infinity;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    // `..;x` is `..` to servers that strip path parameters (Tomcat, Spring, Jetty): a dot segment
    // the route table would not see. Refused, whatever follows the `;` (raw or %3B).
    const param = s.search(/;|%3B/i);
    if (param !== -1 && /^\.{1,2}$/.test(s.slice(0, param)))
      return { ok: false, reason: 'a path parameter (;) hides a dot segment' };
    if (s === '.') {
      if (last) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return { ok: false, reason: '.. climbs above the root' };
      out.pop();
      floor = Math.min(floor, out.length);
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return { ok: true, path: `/${out.join('/')}`, floor };
}

/** Segments in a route prefix ('' for the root route is 0, '/mcp' is 1, '/a/b' is 2). */
export function prefixDepth(prefix: string): number {
  if (prefix === '') return 0;
  let n = 0;
  for (let i = 0; i < prefix.length; i++) if (prefix.charCodeAt(i) === 0x2f) n++;
  return n;
}
