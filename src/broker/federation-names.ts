// How a federated route's names read to its client: each server's tool and prompt names (and task
// ids) get its prefix and the separator (`github__create_issue`), its resource URIs and URI
// templates its prefix and a `+` (`github+repo://x`, still a URI: `+` is a scheme character), so
// that every name the client sends back names its server and the server's own name. A server with
// the empty prefix keeps its names; what of its names would read as another server's is hidden.
// List cursors that span servers are sealed here too.
import { ProtocolError } from '@modelcontextprotocol/server';
import type { KeyRing } from '../session/key-ring.ts';
import { open, seal } from '../session/token.ts';

export interface Naming {
  readonly name: string;
  readonly prefix: string;
}

export class Namespace<M extends Naming> {
  readonly members: readonly M[];
  private readonly sep: string;
  private readonly bare: M | undefined;

  constructor(members: readonly M[], separator: string) {
    this.members = members;
    this.sep = separator;
    this.bare = members.find((m) => m.prefix === '');
  }

  /** A server's tool / prompt name (or task id) as the client sees it. */
  name(m: M, own: string): string {
    return m.prefix === '' ? own : `${m.prefix}${this.sep}${own}`;
  }

  uri(m: M, own: string): string {
    return m.prefix === '' ? own : `${m.prefix}+${own}`;
  }

  /** The server and its own name for a name the client sent; undefined when no server owns it. */
  ownerOfName(name: string): { member: M; own: string } | undefined {
    // The longest prefix wins (config validation refuses prefixes where one begins another; this
    // keeps a config loaded some other way from routing a name to the wrong server).
    let best: M | undefined;
    for (const m of this.members)
      if (
        m.prefix !== '' &&
        name.startsWith(m.prefix + this.sep) &&
        name.length > m.prefix.length + this.sep.length &&
        (!best || m.prefix.length > best.prefix.length)
      )
        best = m;
    if (best) return { member: best, own: name.slice(best.prefix.length + this.sep.length) };
    return this.bare ? { member: this.bare, own: name } : undefined;
  }

  ownerOfUri(uri: string): { member: M; own: string } | undefined {
    const plus = uri.indexOf('+');
    if (plus > 0) {
      const prefix = uri.slice(0, plus);
      const m = this.members.find((x) => x.prefix !== '' && x.prefix === prefix);
      if (m) return { member: m, own: uri.slice(plus + 1) };
    }
    return this.bare ? { member: this.bare, own: uri } : undefined;
  }

  /** Whether a bare server's own name would be read as another server's (so it is hidden from lists). */
  shadowed(m: M, clientName: string, kind: 'name' | 'uri'): boolean {
    if (m.prefix !== '') return false;
    const owner = kind === 'name' ? this.ownerOfName(clientName) : this.ownerOfUri(clientName);
    return owner?.member !== m;
  }

  /** The owner of a name or throws the JSON-RPC error a client of one server would get for an unknown one. */
  requireName(name: unknown, what: string): { member: M; own: string } {
    const hit = typeof name === 'string' ? this.ownerOfName(name) : undefined;
    if (!hit) throw new ProtocolError(-32602, `Unknown ${what}: ${String(name)} (no server of this route has it)`);
    return hit;
  }

  requireUri(uri: unknown): { member: M; own: string } {
    const hit = typeof uri === 'string' ? this.ownerOfUri(uri) : undefined;
    if (!hit)
      throw new ProtocolError(-32602, `Resource not found: ${String(uri)} (no server of this route has it)`, {
        uri,
      });
    return hit;
  }
}

/** Where a merged list goes on: the servers that have more, each with its own cursor. */
export type SpanCursor = [server: string, cursor: string][];

/** The longest cursor of one server a merged cursor carries (real servers' cursors are offsets and ids). */
export const MEMBER_CURSOR = 2048;

/** What a merged cursor is sealed to: the route, the session that received it, and its caller. */
export interface CursorBinding {
  readonly ring: () => KeyRing;
  readonly route: string;
  /** The session it was issued on (a 2026-07-28 caller's sessions are pooled: then its caller alone binds it). */
  readonly session: string;
  /** hashPrincipal of the caller; undefined for a caller who showed nothing. */
  readonly caller: Buffer | undefined;
}

/**
 * The merged cursor: sealed (the session key ring), so a client can neither forge one that names
 * thousands of servers nor read a server's own cursor, and bound to the session and caller it
 * was given to.
 */
export function sealCursor(b: CursorBinding, rest: SpanCursor): string | undefined {
  if (rest.length === 0) return undefined;
  return seal(b.ring(), {
    kind: 'cursor',
    route: b.route,
    replica: b.session,
    value: JSON.stringify(rest),
    principal: b.caller,
    issuedAt: Math.floor(Date.now() / 1000),
  });
}

/**
 * The servers and their own cursors a merged cursor names, each of `servers` at most once; -32602
 * for anything Sluice did not issue to this session and caller, as a server answers a cursor it never issued.
 */
export function openCursor(b: CursorBinding, cursor: unknown, servers: readonly string[]): SpanCursor | undefined {
  if (cursor === undefined) return undefined;
  const claims = typeof cursor === 'string' ? open(b.ring(), 'cursor', cursor, b.caller) : undefined;
  if (claims && claims.route === b.route && claims.replica === b.session) {
    try {
      const rest = JSON.parse(claims.value) as unknown;
      const seen = new Set<string>();
      if (
        Array.isArray(rest) &&
        rest.length <= servers.length &&
        rest.every(
          (e) =>
            Array.isArray(e) &&
            e.length === 2 &&
            typeof e[0] === 'string' &&
            typeof e[1] === 'string' &&
            servers.includes(e[0]) &&
            !seen.has(e[0]) &&
            seen.add(e[0]),
        )
      )
        return rest as SpanCursor;
    } catch {
      // fall through
    }
  }
  throw new ProtocolError(-32602, 'Invalid cursor');
}
