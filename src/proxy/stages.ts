// The request stages before forwarding, in the order pipeline.ts runs them.
import { SluiceError } from '../core/errors.ts';
import { allowsBatches, H, requiresHeaderValidation, summarize } from '../core/mcp.ts';
import { matchRoute, upstreamTarget } from '../routing/route-table.ts';
import { allowedOrigin, corsEnabled, isPreflight, preflightHeaders, responseCorsHeaders } from '../security/cors.ts';
import { headerBodyMismatch } from '../security/header-body-check.ts';
import { hostAllowed, originAllowed } from '../security/host-origin.ts';
import { duplicateSingleton, originFormTarget } from '../security/request-head.ts';
import { normalizePath, prefixDepth } from '../security/request-path.ts';
import { nestsDeeperThan } from '../security/json-depth.ts';
import { findSessionParam, replaceParam } from '../session/query-session.ts';
import { hashPrincipal, openSession, type SessionClaims } from '../session/token.ts';
import { readBody } from '../transport/read-body.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { Exchange, Stage } from './exchange.ts';
import { logRequestPayload, logsPayloads } from './payload-log.ts';
import { behindClose } from './connection-order.ts';

const REFUSED_METHODS = new Set(['TRACE', 'CONNECT']);

/** accept: shutdown, header limits, duplicates, request target. */
export const checkHead: Stage = (ex) => {
  const { req, ctx } = ex;
  // An HTTP/1 connection that claims another version (`POST / HTTP/2.0`): refused before anything
  // runs, so no client gets an error for a request the upstream executed.
  if (req.httpVersionMajor !== 1 && !('stream' in req)) throw new SluiceError('SLUICE_ERR_BAD_REQUEST', `HTTP/${req.httpVersion} on an HTTP/1 connection`, { headers: { connection: 'close' } });
  if (ctx.draining) {
    throw new SluiceError('SLUICE_ERR_SHUTTING_DOWN', undefined, { headers: { connection: 'close', 'retry-after': '1' } });
  }
  if (req.rawHeaders.length / 2 > ctx.config.limits.headerCount) {
    throw new SluiceError('SLUICE_ERR_HEADERS_TOO_LARGE', `more than ${ctx.config.limits.headerCount} header fields`);
  }
  const dup = duplicateSingleton(req.rawHeaders);
  if (dup) throw new SluiceError('SLUICE_ERR_DUPLICATE_HEADER', dup);
  if (REFUSED_METHODS.has(req.method ?? '')) {
    throw new SluiceError('SLUICE_ERR_METHOD_NOT_ALLOWED', req.method, { headers: { allow: 'GET, POST, DELETE, OPTIONS, HEAD' } });
  }
  // A body on GET or HEAD has no meaning in MCP, and an upstream that does not read it would
  // take it for the next request on its connection: refused.
  if ((req.method === 'GET' || req.method === 'HEAD') && (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0')) {
    throw new SluiceError('SLUICE_ERR_BAD_REQUEST', `${req.method} with a body`);
  }
  const target = originFormTarget(req.url);
  if (!target) throw new SluiceError('SLUICE_ERR_BAD_REQUEST', 'unsupported request target');
  // Routing, policy and the upstream all see one normalised path (dot segments resolved).
  const q = target.indexOf('?');
  const verdict = normalizePath(q === -1 ? target : target.slice(0, q));
  if (!verdict.ok) throw new SluiceError('SLUICE_ERR_BAD_PATH', verdict.reason);
  ex.target = q === -1 ? verdict.path : verdict.path + target.slice(q);
  ex.pathFloor = verdict.floor;
};

/** route: public path -> upstream. */
export const selectRoute: Stage = (ex) => {
  const match = matchRoute(ex.ctx.routes, ex.target);
  // `/public/../admin` names /admin through /public: whichever route it lands on (or none), refuse it.
  if (!match && ex.pathFloor !== Infinity) throw new SluiceError('SLUICE_ERR_BAD_PATH', '.. climbs out of the route');
  if (!match) throw new SluiceError('SLUICE_ERR_ROUTE_NOT_FOUND', ex.target.split('?')[0]);
  if (ex.pathFloor < prefixDepth(match.route.prefix)) throw new SluiceError('SLUICE_ERR_BAD_PATH', '.. climbs above the route');
  ex.route = match.route;
  ex.routeRest = match.rest;
  ex.query = match.query;
};

/**
 * The listener's Host and Origin allow lists: a Host it does not serve (DNS rebinding) or an
 * Origin it does not trust gets 403 before anything reaches the upstream.
 */
export const checkHostOrigin: Stage = (ex) => {
  const { req, listener } = ex;
  if (!hostAllowed(listener, req.headers.host)) throw new SluiceError('SLUICE_ERR_HOST_NOT_ALLOWED');
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(listener, origin, req.headers.host, ex.route!.config.cors.allowOrigins)) throw new SluiceError('SLUICE_ERR_ORIGIN_NOT_ALLOWED');
};

/**
 * CORS, when the route has it on: an allowed preflight is answered here (204), a refused one
 * 403; answers to an allowed origin carry Sluice's Access-Control-* headers (forward drops the
 * upstream's own, so there is one policy).
 */
export const applyCors: Stage = (ex) => {
  const { req, res } = ex;
  const policy = ex.route!.config.cors;
  if (!corsEnabled(policy)) return;
  const origin = req.headers.origin;
  const allow = allowedOrigin(policy, origin);
  if (isPreflight(req.method, req.headers)) {
    if (!allow) throw new SluiceError('SLUICE_ERR_ORIGIN_NOT_ALLOWED', origin);
    ex.outcome = 'preflight';
    res.writeHead(204, preflightHeaders(policy, allow, req.headers['access-control-request-headers'] as string | undefined)).end();
    ex.headersAt = performance.now();
    return;
  }
  if (allow) for (const [k, v] of Object.entries(responseCorsHeaders(allow))) res.setHeader(k, v);
};

/** Read bodies of methods that carry one; limits apply before the body is complete. */
export const readRequestBody: Stage = async (ex) => {
  const { req } = ex;
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody && req.method !== 'POST') return;
  const { ctx, res } = ex;
  ex.body = await readBody(req, {
    limit: ctx.config.limits.body,
    deadlineMs: ctx.config.timeouts.requestBody,
    budget: ctx.bodies,
    held: (n) => res.once('close', () => ctx.bodies.give(n)),
  });
};

/** classify: era, JSON-RPC method and name; batch rules; 2026-07-28 header-vs-body check. */
export const classify: Stage = (ex) => {
  const { req } = ex;
  const version = req.headers[H.protocolVersion] as string | undefined;
  const stateless = requiresHeaderValidation(version);
  if (req.method !== 'POST') {
    ex.era = stateless ? 'stateless' : req.headers[H.sessionId] || req.headers[H.lastEventId] ? 'sessionful' : undefined;
    return;
  }
  const body = ex.body;
  if (!body || body.length === 0) throw new SluiceError('SLUICE_ERR_PARSE', 'empty body');
  const depth = ex.ctx.config.limits.jsonDepth;
  if (nestsDeeperThan(body, depth)) throw new SluiceError('SLUICE_ERR_JSON_TOO_DEEP', `limit is ${depth}`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SluiceError('SLUICE_ERR_PARSE');
  }
  const rpc = summarize(json);
  if (!rpc) throw new SluiceError('SLUICE_ERR_INVALID_JSONRPC');
  ex.rpc = rpc;
  ex.era = stateless ? 'stateless' : ex.target.includes('essionId=') || ex.target.includes('session_id=') ? 'http+sse' : 'sessionful';
  if (Array.isArray(json)) {
    ex.batch = json;
    if (!allowsBatches(version)) throw new SluiceError('SLUICE_ERR_BATCH_NOT_ALLOWED', `protocol version ${version}`);
    if (json.length > ex.ctx.config.limits.batch) {
      throw new SluiceError('SLUICE_ERR_BATCH_TOO_LARGE', `${json.length} messages, limit is ${ex.ctx.config.limits.batch}`);
    }
  }
  const mismatch = headerBodyMismatch(req.headers, json);
  if (mismatch) throw new SluiceError('SLUICE_ERR_HEADER_MISMATCH', mismatch);
  if (logsPayloads(ex)) logRequestPayload(ex, json);
};

/**
 * session: the client's Mcp-Session-Id (or, for HTTP+SSE, the POST URL's sessionId) is a Sluice
 * token; open it to the owner replica and the upstream's own id. A token that does not open
 * (tampered, foreign or removed key, another route) or whose owner is gone, ejected or past its
 * drain deadline is answered 404 here, with no upstream call: the spec's signal to start over.
 */
export const openSessionToken: Stage = (ex) => {
  const raw = ex.req.headers[H.sessionId];
  if (raw !== undefined) {
    const token = Array.isArray(raw) ? raw[0] : raw;
    const claims = token ? openSession(ex.ctx.sessions, token, boundTo(ex)) : undefined;
    ex.replica = ownerOf(ex, claims);
    ex.upstreamSessionId = (claims as SessionClaims).upstreamSession;
    return;
  }
  if (ex.era !== 'http+sse') return;
  const param = findSessionParam(ex.query);
  if (!param) return;
  const claims = openSession(ex.ctx.sessions, param.value, boundTo(ex));
  ex.replica = ownerOf(ex, claims);
  ex.query = replaceParam(ex.query, param, (claims as SessionClaims).upstreamSession);
};

/** A session belongs to the principal that opened it: under anyone else its token does not open. */
function boundTo(ex: Exchange): Buffer | undefined {
  return ex.principal ? hashPrincipal(ex.principal.key) : undefined;
}

function ownerOf(ex: Exchange, claims: SessionClaims | undefined): Replica {
  const route = ex.route;
  const owner = claims && route && claims.route === route.path ? route.pool.owner(claims.replica) : undefined;
  if (!owner) throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND');
  ex.pinned = true;
  return owner;
}

/**
 * Load shedding, just before the upstream: over limits.concurrency, 503 now rather than queue
 * without bound. Counted here, once the body is read, so that slow uploads (bounded by the body
 * deadline and memory budget instead) cannot fill the cap and starve requests that are ready.
 */
export const admit: Stage = (ex) => {
  const { ctx, res, req } = ex;
  // Its answer would queue behind one that closes the connection: it can never be delivered, so
  // it must not run. (The error answer queued here is dropped with the connection.)
  if (req.httpVersionMajor === 1 && behindClose(req)) throw new SluiceError('SLUICE_ERR_BAD_REQUEST', 'pipelined behind an answer that closes the connection');
  ctx.inFlight++;
  res.once('close', () => ctx.inFlight--);
  const cap = ctx.config.limits.concurrency;
  if (cap > 0 && ctx.inFlight > cap) throw new SluiceError('SLUICE_ERR_OVERLOADED', `${cap} in flight`, { headers: { 'retry-after': '1' } });
};

/** select replica: new sessions and stateless requests are balanced; none available is a quick 503. */
export const selectReplica: Stage = (ex) => {
  const route = ex.route!;
  let replica = ex.replica;
  if (!replica) {
    const now = Date.now();
    replica = route.pool.pick(now);
    if (!replica) {
      const retry = route.pool.retryAfter(now, route.config.healthCheck.interval);
      throw new SluiceError('SLUICE_ERR_NO_HEALTHY_UPSTREAM', `route ${route.path}`, { headers: { 'retry-after': String(retry) } });
    }
    ex.replica = replica;
  }
  ex.upstreamTarget = upstreamTarget(replica, ex.routeRest, ex.query);
};
