// Who is calling, once Sluice has checked a bearer token or API key (resource-server mode).

export interface Principal {
  /** The name rules and logs use: the JWT's sub, or the API key's name. */
  readonly id: string;
  /** Unique across issuers and key lists: what sessions are bound to (hashed). */
  readonly key: string;
  readonly scopes: ReadonlySet<string>;
  /** The token's claims (empty for API keys). */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Scopes from `scope` (space-separated, RFC 9068) or `scp` (string or array, as some issuers write). */
export function scopesOf(claims: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const v of [claims['scope'], claims['scp']]) {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string' && s) out.add(s);
  }
  return out;
}

/** The scopes of `needed` the principal lacks. */
export function missingScopes(p: Principal, needed: readonly string[]): string[] {
  return needed.filter((s) => !p.scopes.has(s));
}
