// What each route enforces about callers: authentication (resource-server mode), its own upstream
// credential, the method/tool policy and its rate limits. Built from the route's config and kept
// across reloads while that part of the config is unchanged (key caches, tokens and buckets live on).
import { missingRouteSecrets } from '../config/checks.ts';
import { createHash } from 'node:crypto';
import type { RouteConfig } from '../config/schema.ts';
import { addressPolicyOf } from '../routing/route-table.ts';
import { ApiKeys } from '../security/bearer.ts';
import { globMatcher, type NameMatcher } from '../security/glob.ts';
import { InvalidToken, JwtVerifier } from '../security/jwt-verifier.ts';
import type { Principal } from '../security/principal.ts';
import { MemoryBuckets, type BucketSpec, type BucketStore } from '../security/token-bucket.ts';
import { ToolPolicy } from '../security/tool-policy.ts';
import { fetchJson } from '../transport/fetch-small.ts';
import type { UpstreamClient } from '../transport/upstream-client.ts';
import { ClientCredentials } from './client-credentials.ts';

export interface RateLimit {
  readonly by: 'principal' | 'route' | 'tool';
  /** undefined for a concurrency cap. */
  readonly bucket: BucketSpec | undefined;
  readonly concurrent: number | undefined;
  readonly methods: NameMatcher | undefined;
  readonly names: NameMatcher | undefined;
  /** This limit's buckets (memory) or the shared Redis store. */
  readonly store: BucketStore;
  /** In-flight counts per key (concurrency caps; this process only). */
  readonly inFlight: Map<string, number>;
  readonly id: string;
}

export interface RouteGuard {
  /** The config this guard was built from (a reload keeps the guard while it is unchanged). */
  readonly source: string;
  readonly mode: 'transparent' | 'resource-server';
  readonly auth: RouteConfig['auth'];
  /** Check a bearer token: JWT (when an issuer is configured) or API key. Throws InvalidToken / KeysUnavailable. */
  authenticate(token: string): Promise<Principal>;
  /** The header and value the upstream gets in place of the client's token; undefined: none. */
  upstreamCredential(): Promise<{ header: string; value: string }> | undefined;
  /** The upstream answered 401 to that credential: a client-credentials token is fetched anew next time. */
  credentialRejected(): void;
  /** A federated server's own credential (`servers.<name>.upstreamCredential`); undefined: it has none. */
  serverCredential(server: string): Promise<{ header: string; value: string }> | undefined;
  readonly policy: ToolPolicy;
  readonly limits: readonly RateLimit[];
}

export interface GuardDeps {
  client: UpstreamClient;
  env: NodeJS.ProcessEnv;
  /** The shared bucket store when rateLimiting.redis is set. */
  shared: BucketStore | undefined;
}

function sourceOf(r: RouteConfig): string {
  const servers = Object.entries(r.servers ?? {}).map(([name, s]) => [name, s.upstreamCredential]);
  return JSON.stringify([r.auth, r.policy, r.rateLimits, servers]);
}

type Credential = NonNullable<RouteConfig['auth']['upstreamCredential']>;

/** A configured upstream credential: a fixed value, or a client-credentials token kept fresh. */
function credentialSource(
  cred: Credential | undefined,
  deps: GuardDeps,
  egress: ReturnType<typeof addressPolicyOf>,
): { get: RouteGuard['upstreamCredential']; rejected: () => void } {
  if (cred?.clientCredentials) {
    const cc = new ClientCredentials(cred.clientCredentials, deps.env, deps.client, egress);
    return {
      get: () => cc.get().then((t) => ({ header: cred.header, value: `Bearer ${t}` })),
      rejected: () => cc.invalidate(),
    };
  }
  if (!cred) return { get: () => undefined, rejected: () => undefined };
  const answer = Promise.resolve({ header: cred.header, value: cred.value ?? deps.env[cred.valueEnv!] ?? '' });
  return { get: () => answer, rejected: () => undefined };
}

export function buildGuard(r: RouteConfig, deps: GuardDeps): RouteGuard {
  // Registered routes and reloads come here without `sluice validate`'s check: the same check.
  const missing = missingRouteSecrets(r, deps.env);
  if (missing.length > 0) throw new Error(`routes (path ${r.path}): ${missing.join('; ')}`);
  const a = r.auth;
  const egress = addressPolicyOf(a.egress);
  const verifier =
    a.mode === 'resource-server' && a.issuer
      ? new JwtVerifier(
          {
            issuer: a.issuer,
            audience: a.audience ?? a.resource!,
            jwksUri: a.jwksUri,
            algorithms: a.algorithms,
            clockToleranceMs: a.clockTolerance,
            cacheTtlMs: a.jwksCacheTtl,
          },
          (url) => fetchJson(deps.client, url, egress),
        )
      : undefined;
  const apiKeys = new ApiKeys(a.apiKeys);
  const { get: upstreamCredential, rejected: credentialRejected } = credentialSource(
    a.upstreamCredential,
    deps,
    egress,
  );
  const servers = new Map(
    Object.entries(r.servers ?? {}).flatMap(([name, s]) =>
      s.upstreamCredential ? [[name, credentialSource(s.upstreamCredential, deps, egress).get] as const] : [],
    ),
  );
  return {
    source: sourceOf(r),
    mode: a.mode,
    auth: a,
    authenticate: async (token) => {
      if (verifier && token.split('.').length === 3) return verifier.verify(token);
      const p = apiKeys.match(token);
      if (!p) throw new InvalidToken(verifier ? 'not a valid token or API key' : 'unknown API key');
      return p;
    },
    upstreamCredential,
    credentialRejected,
    serverCredential: (name) => servers.get(name)?.(),
    policy: new ToolPolicy(r.policy),
    limits: r.rateLimits.map((l, i) => ({
      by: l.by,
      bucket: l.requests === undefined ? undefined : { capacity: l.burst ?? l.requests, perMs: l.requests / l.per },
      concurrent: l.concurrent,
      methods: l.methods ? globMatcher(l.methods) : l.by === 'tool' ? globMatcher(['tools/call']) : undefined,
      names: l.names ? globMatcher(l.names) : undefined,
      store: deps.shared ?? new MemoryBuckets(),
      inFlight: new Map(),
      // Shared across Sluice processes with the same config: route, rule position and shape.
      id: createHash('sha256')
        .update(`${r.path}\0${i}\0${JSON.stringify(l)}`)
        .digest('base64url')
        .slice(0, 12),
    })),
  };
}

/** Guards for the routes, reusing the previous ones whose config is unchanged. */
export function buildGuards(
  routes: readonly RouteConfig[],
  deps: GuardDeps,
  previous?: ReadonlyMap<string, RouteGuard>,
): Map<string, RouteGuard> {
  const out = new Map<string, RouteGuard>();
  for (const r of routes) {
    const old = previous?.get(r.path);
    out.set(r.path, old && old.source === sourceOf(r) ? old : buildGuard(r, deps));
  }
  return out;
}
