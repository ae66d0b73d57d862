// The admin listener, kept apart from the public listeners (its own address; off unless
// configured). Without a token, for probes and scrapers:
//   GET /healthz   200 while the process runs
//   GET /readyz    200 when every route has a replica taking work, else 503 naming the routes
//   GET /metrics   Prometheus text
// Behind the bearer token (admin.token): the registration API for user-registered upstreams.
//   POST   /admin/tenants/{tenant}/upstreams          {"name": "...", "url": "..."}  -> 201
//   GET    /admin/tenants/{tenant}/upstreams                                         -> 200
//   DELETE /admin/tenants/{tenant}/upstreams/{name}                                  -> 204
// and each federated route's servers: kind, era, replicas, and how the sessions' links to them stand.
//   GET    /admin/federation                                                         -> 200
// A refused URL gets 422 naming the rule it broke, never the address it resolved to.
// The admin page, /ui, is admin-ui.ts.
import { createHash, timingSafeEqual } from 'node:crypto';
import { bearerToken } from '../security/bearer.ts';
import { hostAllowed, listenerPolicy, originAllowed } from '../security/host-origin.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RULE_TEXT, STRICT, type AddressPolicy } from '../security/address-policy.ts';
import { registeredPath, registeredRoute, type Registry } from '../routing/registry.ts';
import { checkUpstream, type Resolver } from '../transport/guarded-connect.ts';
import { BodyBudget, readBody } from '../transport/read-body.ts';
import type { AdminUi } from './admin-ui.ts';
import { federationStates, type GatewayContext } from './context.ts';

const PATH = /^\/admin\/tenants\/([a-z0-9][a-z0-9-]{0,62})\/upstreams(?:\/([a-z0-9][a-z0-9-]{0,62}))?$/;
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_BODY = 64 * 1024;
/** Registration bodies are parsed at once: a few in memory together, their share returned straight away. */
const ADMIN_BODIES = new BodyBudget(16 * MAX_BODY);

export interface AdminDeps {
  ctx: GatewayContext;
  registry: Registry | undefined;
  token: string;
  resolver: Resolver;
  /** Rebuild the route table after a registration changed. */
  onChange: () => void;
  /** Routes without a replica that takes work now (empty: ready), or why the gateway is not. */
  notReady: () => string[];
  /** The admin page (/ui), when the gateway serves it. */
  ui?: AdminUi | undefined;
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const fail = (
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
  headers?: Record<string, string>,
) => send(res, status, { error: { code, message, ...extra } }, headers);

/** A refusal of the admin listener itself, for the admin page's list (beside the public listeners' ones). */
export function adminRefused(ctx: GatewayContext, req: IncomingMessage, reason: string, status: number): void {
  ctx.metrics?.live.refused({
    at: new Date().toISOString(),
    route: 'admin listener',
    reason,
    code: status === 401 ? 'unauthorized' : 'forbidden',
    status,
    method: `${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`,
    rpcMethod: undefined,
    client: req.socket.remoteAddress ?? 'unknown',
  });
}

/** Whether the Authorization header carries `token` (compared in constant time). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const sent = bearerToken(header);
  if (sent === undefined) return false;
  const a = createHash('sha256').update(sent).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

export function registrationPolicy(ctx: GatewayContext): AddressPolicy {
  const e = ctx.config.registrations.egress;
  return { ...STRICT, requireHttps: e.requireHttps, allowCidrs: e.allow, allowHosts: e.allowHosts };
}

async function handle(d: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { ctx, registry } = d;
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (d.ui && (await d.ui.handle(path, req, res, false))) return;
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const problems = d.notReady();
      return problems.length ? send(res, 503, { status: 'not ready', problems }) : send(res, 200, { status: 'ready' });
    }
    if (path === '/metrics' && ctx.metrics) {
      const text = await ctx.metrics.text();
      res.writeHead(200, {
        'content-type': ctx.metrics.contentType,
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(text),
      });
      return void res.end(req.method === 'HEAD' ? undefined : text);
    }
  }
  if (!d.token) return fail(res, 404, 'not_found', 'no such admin resource (the registration API needs admin.token)');
  const wait = d.ui?.guesses.wait('bearer', req.socket.remoteAddress) ?? 0;
  if (wait > 0)
    return fail(
      res,
      429,
      'too_many_guesses',
      'too many wrong tokens from this address; try again later',
      {},
      {
        'retry-after': String(wait),
      },
    );
  if (!tokenMatches(req.headers.authorization, d.token)) {
    d.ui?.guesses.failed('bearer', req.socket.remoteAddress);
    ctx.log.warn(
      { security: 'admin-auth-failed', method: req.method, peer: req.socket.remoteAddress },
      'admin API: missing or wrong token',
    );
    adminRefused(ctx, req, 'admin-auth-failed', 401);
    return fail(
      res,
      401,
      'unauthorized',
      'a valid admin bearer token is required',
      {},
      { 'www-authenticate': 'Bearer realm="sluice-admin"' },
    );
  }
  if (path === '/admin/federation' && req.method === 'GET')
    return send(res, 200, { routes: federationStates(ctx.routes) });
  const m = PATH.exec((req.url ?? '').split('?')[0] as string);
  if (!m) return fail(res, 404, 'not_found', 'no such admin resource');
  if (!registry)
    return fail(res, 404, 'registrations_disabled', 'registrations are not enabled (registrations.enabled)');
  const tenant = m[1] as string;
  const name = m[2];
  if (req.method === 'GET' && !name) {
    return send(res, 200, {
      upstreams: registry.list(tenant).map((r) => ({ ...r, route: registeredPath(ctx.config, r.tenant, r.name) })),
    });
  }
  if (req.method === 'DELETE' && name) {
    const saved = registry.remove(tenant, name);
    if (!saved) return fail(res, 404, 'not_found', `no upstream "${name}" for tenant "${tenant}"`);
    // The route stops now, not once the file is written.
    d.onChange();
    await saved;
    ctx.log.info({ tenant, name }, 'registered upstream removed');
    return send(res, 204);
  }
  if (req.method === 'POST' && !name) return register(d, registry, tenant, req, res);
  return fail(
    res,
    405,
    'method_not_allowed',
    'use GET or POST on .../upstreams, DELETE on .../upstreams/{name}',
    {},
    { allow: name ? 'DELETE' : 'GET, POST' },
  );
}

async function register(
  d: AdminDeps,
  registry: Registry,
  tenant: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { ctx } = d;
  let body: { name?: unknown; url?: unknown };
  try {
    body = JSON.parse(
      (
        await readBody(req, {
          limit: MAX_BODY,
          deadlineMs: 10_000,
          budget: ADMIN_BODIES,
          held: (n) => ADMIN_BODIES.give(n),
        })
      ).toString('utf8'),
    ) as typeof body;
  } catch {
    return fail(res, 400, 'bad_request', 'body must be JSON {"name": "...", "url": "..."} under 64 KiB');
  }
  const { name, url } = body ?? {};
  if (typeof name !== 'string' || !NAME.test(name))
    return fail(res, 400, 'bad_request', '"name" must be 1-63 of a-z 0-9 -, starting with a letter or digit');
  if (typeof url !== 'string' || url.length > 2048)
    return fail(res, 400, 'bad_request', '"url" must be a string of at most 2048 characters');
  if (registry.find(tenant, name))
    return fail(res, 409, 'exists', `tenant "${tenant}" already has an upstream "${name}"`);
  if (registry.list(tenant).length >= ctx.config.registrations.maxPerTenant)
    return fail(res, 409, 'limit', `at most ${ctx.config.registrations.maxPerTenant} upstreams per tenant`);
  const path = registeredPath(ctx.config, tenant, name);
  if (ctx.config.routes.some((r) => r.path === path))
    return fail(res, 409, 'exists', `the path ${path} is taken by a configured route`);
  const verdict = await checkUpstream(url, registrationPolicy(ctx), d.resolver);
  if (!verdict.ok) {
    ctx.log.warn(
      { security: 'registration-refused', tenant, name, rule: verdict.rule },
      'registration refused by the address policy',
    );
    return fail(res, 422, 'SLUICE_ERR_UPSTREAM_REFUSED', `upstream not allowed: ${RULE_TEXT[verdict.rule]}`, {
      rule: verdict.rule,
    });
  }
  const entry = { tenant, name, url: verdict.url.href, createdAt: new Date().toISOString() };
  try {
    registeredRoute(ctx.config, entry); // the same checks as a configured route (no query, fragment...)
  } catch {
    return fail(res, 400, 'bad_request', '"url" must be an http(s) base URL without query or fragment');
  }
  // The checks above ran before awaits; the registry checks again as it adds, in one step.
  const added = registry.add(entry, ctx.config.registrations.maxPerTenant);
  if ('refused' in added)
    return added.refused === 'exists'
      ? fail(res, 409, 'exists', `tenant "${tenant}" already has an upstream "${name}"`)
      : fail(res, 409, 'limit', `at most ${ctx.config.registrations.maxPerTenant} upstreams per tenant`);
  d.onChange();
  await added.saved;
  ctx.log.info({ tenant, name }, 'upstream registered');
  return send(res, 201, { ...entry, route: path });
}

/**
 * The admin listener on `listen`, or (a worker under `--workers`) on the private socket `path`,
 * where the primary hands it the registration API's requests; Host and Origin are judged by
 * `listen` either way.
 */
export async function startAdminServer(
  d: AdminDeps,
  listen: { host: string; port: number; allowHosts: readonly string[]; allowOrigins: readonly string[] },
  path?: string,
): Promise<Server> {
  const { host, port } = listen;
  // The same DNS-rebinding defence as the public listeners: a web page must not reach metrics or
  // the registration API through a name that resolves to this address.
  const policy = listenerPolicy(listen);
  const server = createServer((req, res) => {
    if (!hostAllowed(policy, req.headers.host) || !originAllowed(policy, req.headers.origin, req.headers.host, [])) {
      d.ctx.log.warn({ security: 'admin-host-origin-rejected' }, 'admin request refused: Host or Origin not allowed');
      adminRefused(d.ctx, req, 'admin-host-origin-rejected', 403);
      return fail(res, 403, 'forbidden', 'Host or Origin not allowed');
    }
    handle(d, req, res).catch((err: unknown) => {
      d.ctx.log.error({ err }, 'admin API error');
      if (!res.headersSent) fail(res, 500, 'internal', 'internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (path) server.listen({ path, exclusive: true }, done);
    else server.listen(port, host, done);
  });
  return server;
}
