// Bearer tokens in, RFC 6750 / RFC 9728 challenges out.
import { createHash } from 'node:crypto';
import type { Principal } from './principal.ts';

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The token of `Authorization: Bearer <token>` (RFC 6750 b64token); undefined when absent or another scheme. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(v)?.[1];
  return token !== undefined && B64TOKEN.test(token) ? token : undefined;
}

/** Whether a token can be sent as a bearer credential at all (RFC 6750 b64token syntax). */
export function isBearerSyntax(token: string): boolean {
  return B64TOKEN.test(token);
}

const quote = (s: string): string => `"${s.replace(/[\\"]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`;

export interface Challenge {
  resourceMetadata: string;
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request';
  description?: string;
  scope?: readonly string[];
}

/** `Bearer resource_metadata="…", scope="…", error="…", error_description="…"`. */
export function bearerChallenge(c: Challenge): string {
  const parts = [`resource_metadata=${quote(c.resourceMetadata)}`];
  if (c.scope && c.scope.length > 0) parts.push(`scope=${quote(c.scope.join(' '))}`);
  if (c.error) parts.push(`error=${quote(c.error)}`);
  if (c.description) parts.push(`error_description=${quote(c.description)}`);
  return `Bearer ${parts.join(', ')}`;
}

export interface ApiKeyEntry {
  readonly name: string;
  /** SHA-256 of the key, lower-case hex. */
  readonly sha256: string;
  readonly scopes: readonly string[];
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * API keys by their SHA-256. Looked up by digest: timing can tell an attacker at most something
 * about the digest of what they sent, never about a stored key.
 */
export class ApiKeys {
  private readonly byDigest = new Map<string, Principal>();

  constructor(entries: readonly ApiKeyEntry[]) {
    for (const e of entries)
      this.byDigest.set(e.sha256.toLowerCase(), {
        id: e.name,
        key: `apikey\0${e.name}`,
        scopes: new Set(e.scopes),
        claims: {},
      });
  }

  match(token: string): Principal | undefined {
    return this.byDigest.get(createHash('sha256').update(token, 'utf8').digest('hex'));
  }
}

/** The metadata URL of a resource (RFC 9728 §3.1): the well-known path goes between host and path. */
export function metadataUrlOf(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return `${u.origin}/.well-known/oauth-protected-resource${path}`;
}
