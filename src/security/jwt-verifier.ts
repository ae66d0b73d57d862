// Bearer JWTs checked the way the MCP authorization spec asks: signature by the issuer's JWKS,
// issuer, audience (this resource), expiry required, algorithms pinned. Keys are fetched through
// a function the caller gives (the gateway passes its SSRF-guarded client) and cached; a token
// signed by an unknown key id refetches, at most every 30 s, so key rotation works and a flood
// of forged kids cannot turn into a flood of fetches.
import { createHash } from 'node:crypto';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { scopesOf, type Principal } from './principal.ts';

export interface JwtSettings {
  issuer: string;
  audience: string;
  jwksUri: string | undefined;
  algorithms: readonly string[];
  clockToleranceMs: number;
  cacheTtlMs: number;
}

/** GET a URL, parse JSON; throw on anything else. */
export type FetchJson = (url: string) => Promise<unknown>;

/** The token is not acceptable: 401 invalid_token with this reason. */
export class InvalidToken extends Error {}
/** The keys could not be had: nothing can be checked now (503, never "valid"). */
export class KeysUnavailable extends Error {}

const REFETCH_GAP_MS = 30_000;
/** Verified tokens remembered (by SHA-256), so a session's many calls pay for one signature check. */
const CACHE_MAX = 10_000;
const FAILURE_BACKOFF_MS = 5_000;

export class JwtVerifier {
  private readonly s: JwtSettings;
  private readonly fetchJson: FetchJson;
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private fetchedAt = 0;
  private loading: Promise<void> | undefined;
  /** Token digest -> principal and expiry (ms), oldest first. Cleared whenever keys change. */
  private failure: { at: number; err: KeysUnavailable } | undefined;
  private discovered: string | undefined;
  private readonly verified = new Map<string, { principal: Principal; exp: number }>();

  constructor(settings: JwtSettings, fetchJson: FetchJson) {
    this.s = settings;
    this.fetchJson = fetchJson;
  }

  async verify(token: string): Promise<Principal> {
    if (token.split('.').length !== 3) throw new InvalidToken('not a JWT');
    const now = Date.now();
    const digest = createHash('sha256').update(token).digest('base64url');
    const hit = this.verified.get(digest);
    if (hit && now < hit.exp + this.s.clockToleranceMs && now - this.fetchedAt <= this.s.cacheTtlMs)
      return hit.principal;
    if (!this.keys || now - this.fetchedAt > this.s.cacheTtlMs) await this.load(!this.keys);
    let payload: JWTPayload;
    try {
      payload = await this.check(token);
    } catch (err) {
      if (
        !(err instanceof errors.JWKSNoMatchingKey) ||
        Date.now() - this.fetchedAt < Math.min(REFETCH_GAP_MS, this.s.cacheTtlMs)
      )
        throw toInvalid(err);
      await this.load(true);
      try {
        payload = await this.check(token);
      } catch (again) {
        throw toInvalid(again);
      }
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new InvalidToken('token has no subject');
    const principal: Principal = {
      id: payload.sub,
      key: `${payload.iss ?? ''}\0${payload.sub}`,
      scopes: scopesOf(payload as Record<string, unknown>),
      claims: payload as Record<string, unknown>,
    };
    if (this.verified.size >= CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(digest, { principal, exp: (payload.exp ?? 0) * 1000 });
    return principal;
  }

  private check(token: string): Promise<JWTPayload> {
    return jwtVerify(token, this.keys!, {
      issuer: this.s.issuer,
      audience: this.s.audience,
      algorithms: [...this.s.algorithms],
      clockTolerance: Math.round(this.s.clockToleranceMs / 1000),
      requiredClaims: ['exp'],
    }).then((r) => r.payload);
  }

  /** One fetch at a time; a failed refresh keeps the old keys unless there are none (`required`). */
  private async load(required: boolean): Promise<void> {
    // While the issuer is failing, requests are answered at once instead of each trying again.
    const failed = this.failure;
    if (failed && Date.now() - failed.at < FAILURE_BACKOFF_MS) {
      if (required || !this.keys) throw failed.err;
      return;
    }
    this.loading ??= (async () => {
      try {
        const uri = this.s.jwksUri ?? (this.discovered ??= await this.discoverJwksUri());
        const jwks = await this.fetchJson(uri);
        if (!isJwks(jwks)) throw new KeysUnavailable(`${uri} is not a JWK set`);
        this.keys = createLocalJWKSet(jwks);
        this.fetchedAt = Date.now();
        // A key that left the set must not keep its tokens valid through the cache.
        this.verified.clear();
        this.failure = undefined;
      } catch (err) {
        this.failure = {
          at: Date.now(),
          err: err instanceof KeysUnavailable ? err : new KeysUnavailable((err as Error).message),
        };
        throw this.failure.err;
      } finally {
        this.loading = undefined;
      }
    })();
    try {
      await this.loading;
    } catch (err) {
      if (required || !this.keys) throw err as KeysUnavailable;
      this.fetchedAt = Date.now() - this.s.cacheTtlMs + REFETCH_GAP_MS; // try again in 30 s
    }
  }

  /** jwks_uri from RFC 8414 metadata, then OpenID Connect discovery (both path forms, as MCP clients try them). */
  private async discoverJwksUri(): Promise<string> {
    const iss = new URL(this.s.issuer);
    const path = iss.pathname === '/' ? '' : iss.pathname.replace(/\/$/, '');
    const candidates = [
      `${iss.origin}/.well-known/oauth-authorization-server${path}`,
      `${iss.origin}/.well-known/openid-configuration${path}`,
      ...(path ? [`${iss.origin}${path}/.well-known/openid-configuration`] : []),
    ];
    const reasons: string[] = [];
    for (const url of candidates) {
      try {
        const meta = (await this.fetchJson(url)) as Record<string, unknown>;
        if (typeof meta?.['jwks_uri'] === 'string') return meta['jwks_uri'];
        reasons.push(`${url}: no jwks_uri`);
      } catch (err) {
        reasons.push(`${url}: ${(err as Error).message}`);
      }
    }
    throw new KeysUnavailable(`no JWKS found for issuer ${this.s.issuer} (${reasons.join('; ')})`);
  }
}

function isJwks(v: unknown): v is JSONWebKeySet {
  return typeof v === 'object' && v !== null && Array.isArray((v as { keys?: unknown }).keys);
}

function toInvalid(err: unknown): Error {
  if (err instanceof KeysUnavailable) return err;
  if (err instanceof errors.JWTExpired) return new InvalidToken('token expired');
  if (err instanceof errors.JWTClaimValidationFailed)
    return new InvalidToken(`claim ${err.claim} rejected: ${err.reason}`);
  if (err instanceof errors.JWKSNoMatchingKey) return new InvalidToken('signed by an unknown key');
  if (err instanceof errors.JOSEAlgNotAllowed) return new InvalidToken('signature algorithm not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new InvalidToken('signature invalid');
  if (err instanceof errors.JOSEError) return new InvalidToken(`malformed token (${err.code})`);
  return new InvalidToken('malformed token');
}
