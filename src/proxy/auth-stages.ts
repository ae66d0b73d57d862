// The stages that decide who may call what: protected-resource metadata, bearer authentication
// (resource-server mode), then the method/tool policy, rate limits and the upstream credential;
// and their twins on the answer: the rejected-credential rule, the public challenge, list filtering.
import { createHash } from 'node:crypto';
import { SluiceError } from '../core/errors.ts';
import { nameOf } from '../core/mcp.ts';
import type { Route } from '../routing/route-table.ts';
import { bearerChallenge, bearerToken, metadataUrlOf } from '../security/bearer.ts';
import { clientAddress, publicOrigin } from '../security/forwarded.ts';
import { forwardedOf } from './upstream-headers.ts';
import { hostAllowed } from '../security/host-origin.ts';
import { InvalidToken } from '../security/jwt-verifier.ts';
import { missingScopes } from '../security/principal.ts';
import { fetchSmall } from '../transport/fetch-small.ts';
import type { Exchange, ResponseStage, RoutedExchange, Stage } from './exchange.ts';
import { ListFilter } from './list-filter.ts';
import { LIST_METHODS } from '../security/tool-policy.ts';
import type { RateLimit, RouteGuard } from './route-guard.ts';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** The route's canonical public URL: configured, else the scheme and Host the client used plus the route path. */
export function resourceUrl(ex: Exchange, route: Route, guard: RouteGuard | undefined): string {
  if (guard?.auth.resource) return guard.auth.resource;
  return publicOrigin(forwardedOf(ex)) + (route.path === '/' ? '/' : route.path);
}

function guardOf(ex: RoutedExchange): RouteGuard {
  return ex.route.guard!;
}

/**
 * RFC 9728 metadata at /.well-known/oauth-protected-resource<route path> (and at the bare
 * well-known path for a root or only route): Sluice's own in resource-server mode, the upstream's
 * with `resource` rewritten to the public URL in transparent mode. Other paths pass on.
 */
export const serveResourceMetadata: Stage = (ex) => {
  const t = ex.target;
  // Most requests are not for metadata: they leave without a promise (no microtask).
  if (
    !t.startsWith(WELL_KNOWN) ||
    (t.length > WELL_KNOWN.length && t[WELL_KNOWN.length] !== '/' && t[WELL_KNOWN.length] !== '?')
  )
    return;
  return serveMetadata(ex, t.split('?')[0]!);
};

async function serveMetadata(ex: Exchange, path: string): Promise<void> {
  const suffix = path.slice(WELL_KNOWN.length) || '/';
  const routes = ex.ctx.routes;
  const route =
    routes.find((r) => r.path === suffix) ?? (suffix === '/' && routes.length === 1 ? routes[0] : undefined);
  if (!route) return;
  ex.route = route;
  if (!hostAllowed(ex.listener, ex.req.headers.host)) throw new SluiceError('SLUICE_ERR_HOST_NOT_ALLOWED');
  const { req, res } = ex;
  // A public document: any origin may read it (browser clients discover auth before they have a token).
  const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'WWW-Authenticate' };
  if (req.method === 'OPTIONS') {
    ex.outcome = 'preflight';
    res
      .writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET, OPTIONS',
        'access-control-allow-headers': 'MCP-Protocol-Version, Authorization',
        'access-control-max-age': '86400',
      })
      .end();
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD')
    throw new SluiceError('SLUICE_ERR_METHOD_NOT_ALLOWED', req.method, { headers: { allow: 'GET, HEAD, OPTIONS' } });
  const guard = route.guard;
  const resource = resourceUrl(ex, route, guard);
  let doc: Record<string, unknown>;
  if (guard?.mode === 'resource-server') {
    const a = guard.auth;
    doc = {
      resource,
      ...(a.issuer ? { authorization_servers: [a.issuer] } : {}),
      scopes_supported: a.scopesSupported ?? a.scopes,
      bearer_methods_supported: ['header'],
    };
  } else {
    const upstream = await upstreamMetadata(ex, route);
    if (!upstream)
      throw new SluiceError('SLUICE_ERR_ROUTE_NOT_FOUND', 'the upstream serves no protected-resource metadata');
    doc = { ...upstream, resource };
  }
  const body = JSON.stringify(doc);
  ex.outcome = 'metadata';
  res.writeHead(200, {
    ...cors,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'max-age=300',
  });
  ex.headersAt = performance.now();
  res.end(req.method === 'HEAD' ? undefined : body);
  ex.bytesOut += Buffer.byteLength(body);
}

/** The upstream's own metadata (path-suffixed, then root, as MCP clients look), or undefined when it has none. */
async function upstreamMetadata(ex: Exchange, route: Route): Promise<Record<string, unknown> | undefined> {
  const replica = route.pool.pick(Date.now());
  if (!replica) throw new SluiceError('SLUICE_ERR_NO_HEALTHY_UPSTREAM', `route ${route.path}`);
  const first = metadataUrlOf(replica.url.href);
  const urls = [first, ...(first.endsWith(WELL_KNOWN) ? [] : [`${replica.origin}${WELL_KNOWN}`])];
  for (const url of urls) {
    let res;
    try {
      res = await fetchSmall(ex.ctx.client, {
        url,
        policy: route.policy,
        tls: route.tls,
        timeoutMs: ex.ctx.config.timeouts.connect + 5_000,
      });
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', (err as Error).message);
    }
    if (res.status === 404 || res.status === 405) continue;
    try {
      const json = JSON.parse(res.body.toString('utf8')) as unknown;
      if (res.status === 200 && typeof json === 'object' && json !== null && !Array.isArray(json))
        return json as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new SluiceError(
      'SLUICE_ERR_UPSTREAM_PROTOCOL',
      `protected-resource metadata at ${url}: HTTP ${res.status}, not a JSON object`,
    );
  }
  return undefined;
}

/**
 * Resource-server mode: every request carries a bearer token Sluice accepts (a JWT from the
 * issuer for this resource, or a known API key) and the route's scopes; otherwise 401 / 403 with
 * the challenge MCP clients follow to discovery.
 */
export const authenticate: Stage<RoutedExchange> = (ex) => {
  const guard = guardOf(ex);
  if (guard.mode === 'resource-server') return checkBearer(ex, guard);
};

async function checkBearer(ex: RoutedExchange, guard: RouteGuard): Promise<void> {
  const metadata = metadataUrlOf(resourceUrl(ex, ex.route, guard));
  const scope = guard.auth.scopes;
  const token = bearerToken(ex.req.headers.authorization);
  if (!token) {
    const detail =
      ex.req.headers.authorization === undefined ? 'no bearer token' : 'Authorization is not a bearer token';
    throw new SluiceError('SLUICE_ERR_UNAUTHORIZED', detail, {
      headers: { 'www-authenticate': bearerChallenge({ resourceMetadata: metadata, scope }) },
    });
  }
  try {
    ex.principal = await guard.authenticate(token);
  } catch (err) {
    if (err instanceof InvalidToken) {
      throw new SluiceError('SLUICE_ERR_UNAUTHORIZED', err.message, {
        headers: {
          'www-authenticate': bearerChallenge({
            resourceMetadata: metadata,
            scope,
            error: 'invalid_token',
            description: err.message,
          }),
        },
      });
    }
    ex.ctx.log.warn({ route: ex.route.path, err: (err as Error).message }, 'token keys unavailable');
    throw new SluiceError('SLUICE_ERR_AUTH_UNAVAILABLE', undefined, { headers: { 'retry-after': '5' } });
  }
  const missing = missingScopes(ex.principal, scope);
  if (missing.length > 0) {
    throw new SluiceError('SLUICE_ERR_INSUFFICIENT_SCOPE', `needs ${missing.join(' ')}`, {
      headers: {
        'www-authenticate': bearerChallenge({
          resourceMetadata: metadata,
          scope,
          error: 'insufficient_scope',
          description: `needs scope ${missing.join(' ')}`,
        }),
      },
    });
  }
}

/**
 * Policy, rate limits and the upstream credential, once the JSON-RPC method and name are known (and checked against the
 * headers).
 */
export const authorize: Stage<RoutedExchange> = (ex) => {
  const guard = guardOf(ex);
  if (!guard.policy.open && ex.rpc) {
    const messages = ex.batch ?? [undefined];
    for (const m of messages) {
      const msg = m as Record<string, unknown> | undefined;
      const method = msg ? (typeof msg['method'] === 'string' ? msg['method'] : undefined) : ex.rpc.method;
      const name = msg ? nameOf(msg) : ex.rpc.name;
      if (guard.policy.allows(method, name, ex.principal)) continue;
      // A JSON-RPC error answers a single request; an HTTP+SSE client reads answers only from
      // its stream and a batch has no one id, so those get a 403 their POST fails with.
      const code = ex.era === 'http+sse' || ex.batch ? 'SLUICE_ERR_POLICY_FORBIDDEN' : 'SLUICE_ERR_POLICY_DENIED';
      throw new SluiceError(code, `${method}${name ? ` ${name}` : ''}`);
    }
  }
  const waits: Promise<void>[] = [];
  for (const limit of guard.limits) {
    const key = limitKey(ex, limit);
    if (key === undefined) continue;
    if (limit.concurrent !== undefined) holdSlot(ex, limit, key);
    else waits.push(takeToken(ex, limit, key));
  }
  if (ex.route.members.length > 0) ex.serverCredential = (server) => guard.serverCredential(server);
  const cred = guard.upstreamCredential();
  if (cred) {
    waits.push(
      cred.then(
        (c) => void (ex.upstreamCredential = c),
        (err: unknown) => {
          ex.ctx.log.error({ route: ex.route.path, err: (err as Error).message }, 'upstream credential unavailable');
          throw new SluiceError(
            'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
            "the route's upstream credential could not be obtained",
          );
        },
      ),
    );
  }
  if (waits.length === 0) return;
  return Promise.all(waits).then(() => undefined);
};

/** The bucket key of this exchange under a limit, or undefined when the limit does not count it. */
function limitKey(ex: Exchange, limit: RateLimit): string | undefined {
  const method = ex.rpc?.method;
  if (limit.methods && (method === undefined || !limit.methods(method))) return undefined;
  if (limit.names && (ex.rpc?.name === undefined || !limit.names(ex.rpc.name))) return undefined;
  const who = ex.principal ? `p:${ex.principal.key}` : `a:${clientAddress(forwardedOf(ex), ex.ctx.trusted)}`;
  const raw = limit.by === 'route' ? '' : limit.by === 'principal' ? who : `${who}\0${ex.rpc?.name ?? ''}`;
  // Keys are hashed: bounded length, and no principal or tool name in Redis.
  return `${limit.id}:${raw === '' ? 'route' : createHash('sha256').update(raw).digest('base64url').slice(0, 22)}`;
}

function holdSlot(ex: Exchange, limit: RateLimit, key: string): void {
  const n = limit.inFlight.get(key) ?? 0;
  if (n >= limit.concurrent!)
    throw new SluiceError('SLUICE_ERR_RATE_LIMITED', `more than ${limit.concurrent} in flight (per ${limit.by})`, {
      headers: { 'retry-after': '1' },
    });
  limit.inFlight.set(key, n + 1);
  ex.res.once('close', () => {
    const left = (limit.inFlight.get(key) ?? 1) - 1;
    if (left <= 0) limit.inFlight.delete(key);
    else limit.inFlight.set(key, left);
  });
}

let lastStoreWarning = 0;

async function takeToken(ex: Exchange, limit: RateLimit, key: string): Promise<void> {
  let wait: number;
  try {
    wait = await limit.store.take(key, limit.bucket!);
  } catch (err) {
    const { ctx } = ex;
    if (Date.now() - lastStoreWarning > 10_000) {
      lastStoreWarning = Date.now();
      ctx.log.warn(
        { err: (err as Error).message, failOpen: ctx.config.rateLimiting.failOpen },
        'rate-limit store unavailable',
      );
    }
    if (ctx.config.rateLimiting.failOpen) return;
    throw new SluiceError('SLUICE_ERR_OVERLOADED', 'rate-limit store unavailable', { headers: { 'retry-after': '1' } });
  }
  if (wait > 0)
    throw new SluiceError('SLUICE_ERR_RATE_LIMITED', `limit per ${limit.by}`, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) },
    });
}

/**
 * Resource-server mode: the client's token was good (Sluice checked it), so an upstream 401 refused
 * the route's own credential. Passing it on would send the client into a pointless re-authorization.
 */
export const refuseRejectedCredential: ResponseStage = (ex, head) => {
  if (head.status !== 401) return;
  const guard = ex.route.guard;
  if (guard?.mode !== 'resource-server') return;
  guard.credentialRejected();
  const challenge = head.upstream['www-authenticate'];
  ex.ctx.log.error(
    {
      route: ex.route.path,
      replica: head.replica.id,
      challenge: typeof challenge === 'string' ? challenge : undefined,
    },
    'upstream refused the route credential',
  );
  throw new SluiceError('SLUICE_ERR_UPSTREAM_AUTH', 'check auth.upstreamCredential');
};

/**
 * Transparent mode: a challenge naming the upstream's own metadata URL names the public one
 * instead (Sluice serves it there, with the public resource), so clients discover the right thing.
 */
export const publicChallenge: ResponseStage = (ex, head) => {
  const challenge = head.headers['www-authenticate'];
  if (typeof challenge !== 'string') return;
  const guard = ex.route.guard;
  if (guard?.mode !== 'transparent') return;
  head.headers['www-authenticate'] = challenge.replace(/resource_metadata="([^"]*)"/gi, (whole, url: string) => {
    try {
      if (new URL(url).origin !== head.replica.origin) return whole;
    } catch {
      return whole;
    }
    return `resource_metadata="${metadataUrlOf(resourceUrl(ex, ex.route, guard))}"`;
  });
};

/** The policy's twin on the answer: list results (JSON, SSE, batches) keep only what the caller may use. */
export const filterLists: ResponseStage = (ex, head) => {
  const guard = ex.route.guard;
  if (!guard || guard.policy.open) return;
  if (!head.sse && !(ex.rpc?.method !== undefined && LIST_METHODS[ex.rpc.method]) && !ex.batch) return;
  head.transforms.push(new ListFilter(guard.policy, ex.principal, head.sse));
  if (!head.sse) delete head.headers['content-length'];
};
