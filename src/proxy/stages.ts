// The request stages before forwarding, in the order pipeline.ts runs them, with the response
// stages that are their twins (CORS, passive health).
import { SluiceError } from '../core/errors.ts';
import { allowsBatches, H, requiresHeaderValidation, summarize } from '../core/mcp.ts';
import { matchRoute, upstreamTarget } from '../routing/route-table.ts';
import { allowedOrigin, corsEnabled, isPreflight, preflightHeaders, responseCorsHeaders } from '../security/cors.ts';
import { headerBodyMismatch } from '../security/header-body-check.ts';
import { hostAllowed, originAllowed } from '../security/host-origin.ts';
import { duplicateSingleton, originFormTarget } from '../security/request-head.ts';
import { normalizePath, prefixDepth } from '../security/request-path.ts';
import { nestsDeeperThan } from '../security/json-depth.ts';
import { findSessionParam } from '../session/query-session.ts';
import { readBody } from '../transport/read-body.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { DispatchedExchange, Exchange, ResponseStage, RoutedExchange, Stage } from './exchange.ts';
import { logRequestPayload, logsPayloads } from './payload-log.ts';
import { behindClose } from './connection-order.ts';

const REFUSED_METHODS = new Set(['TRACE', 'CONNECT']);

/** accept: shutdown, header limits, duplicates, request target. */
export const checkHead: Stage = (ex) => {
  const { req, ctx } = ex;
  // An HTTP/1 connection that claims another version (`POST / HTTP/2.0`): refused before anything
  // runs, so no client gets an error for a request the upstream executed.
  if (req.httpVersionMajor !== 1 && !('stream' in req))
    throw new SluiceError('SLUICE_ERR_BAD_REQUEST', `HTTP/${req.httpVersion} on an HTTP/1 connection`, {
      headers: { connection: 'close' },
    });
  // A draining instance still serves what other instances hand it for the sessions it holds.
  if (ctx.draining && !ctx.peerConnections.has(req.socket)) {
    throw new SluiceError('SLUICE_ERR_SHUTTING_DOWN', undefined, {
      headers: { connection: 'close', 'retry-after': '1' },
    });
  }
  if (req.rawHeaders.length / 2 > ctx.config.limits.headerCount) {
    throw new SluiceError('SLUICE_ERR_HEADERS_TOO_LARGE', `more than ${ctx.config.limits.headerCount} header fields`);
  }
  const dup = duplicateSingleton(req.rawHeaders);
  if (dup) throw new SluiceError('SLUICE_ERR_DUPLICATE_HEADER', dup);
  if (REFUSED_METHODS.has(req.method ?? '')) {
    throw new SluiceError('SLUICE_ERR_METHOD_NOT_ALLOWED', req.method, {
      headers: { allow: 'GET, POST, DELETE, OPTIONS, HEAD' },
    });
  }
  // A body on GET or HEAD has no meaning in MCP, and an upstream that does not read it would
  // take it for the next request on its connection: refused.
  if (
    (req.method === 'GET' || req.method === 'HEAD') &&
    (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0')
  ) {
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
  if (ex.pathFloor < prefixDepth(match.route.prefix))
    throw new SluiceError('SLUICE_ERR_BAD_PATH', '.. climbs above the route');
  ex.route = match.route;
  ex.routeRest = match.rest;
  ex.query = match.query;
};

/**
 * The listener's Host and Origin allow lists: a Host it does not serve (DNS rebinding) or an
 * Origin it does not trust gets 403 before anything reaches the upstream.
 */
export const checkHostOrigin: Stage<RoutedExchange> = (ex) => {
  const { req, listener } = ex;
  if (!hostAllowed(listener, req.headers.host)) throw new SluiceError('SLUICE_ERR_HOST_NOT_ALLOWED');
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(listener, origin, req.headers.host, ex.route.config.cors.allowOrigins))
    throw new SluiceError('SLUICE_ERR_ORIGIN_NOT_ALLOWED');
};

/**
 * CORS, when the route has it on: an allowed preflight is answered here (204), a refused one
 * 403; answers to an allowed origin carry Sluice's Access-Control-* headers (forward drops the
 * upstream's own, so there is one policy).
 */
export const applyCors: Stage<RoutedExchange> = (ex) => {
  const { req, res } = ex;
  const policy = ex.route.config.cors;
  if (!corsEnabled(policy)) return;
  const origin = req.headers.origin;
  const allow = allowedOrigin(policy, origin);
  if (isPreflight(req.method, req.headers)) {
    if (!allow) throw new SluiceError('SLUICE_ERR_ORIGIN_NOT_ALLOWED', origin);
    ex.outcome = 'preflight';
    res
      .writeHead(
        204,
        preflightHeaders(policy, allow, req.headers['access-control-request-headers'] as string | undefined),
      )
      .end();
    ex.headersAt = performance.now();
    return;
  }
  if (allow) for (const [k, v] of Object.entries(responseCorsHeaders(allow))) res.setHeader(k, v);
};

/** CORS on the answer: with CORS on for the route, Sluice's headers (set by applyCors) are the only ones. */
export const ownCorsHeaders: ResponseStage = (ex, head) => {
  if (!corsEnabled(ex.route.config.cors)) return;
  const out = head.headers;
  for (const name of Object.keys(out)) if (name.startsWith('access-control-')) delete out[name];
  const vary = ex.res.getHeader('vary');
  if (vary !== undefined && out['vary'] !== undefined) out['vary'] = `${String(out['vary'])}, ${String(vary)}`;
};

/** Read bodies of methods that carry one; limits apply before the body is complete. */
export const readRequestBody: Stage<RoutedExchange> = async (ex) => {
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
export const classify: Stage<RoutedExchange> = (ex) => {
  const { req } = ex;
  const version = req.headers[H.protocolVersion] as string | undefined;
  const stateless = requiresHeaderValidation(version);
  if (req.method !== 'POST') {
    ex.era = stateless
      ? 'stateless'
      : req.headers[H.sessionId] || req.headers[H.lastEventId]
        ? 'sessionful'
        : undefined;
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
  // A broker speaks MCP itself: it gets the parsed message (the relay forwards bytes and keeps none).
  if (ex.route.broker) ex.message = json;
  ex.era = stateless ? 'stateless' : findSessionParam(ex.query) ? 'http+sse' : 'sessionful';
  if (Array.isArray(json)) {
    ex.batch = json;
    if (!allowsBatches(version)) throw new SluiceError('SLUICE_ERR_BATCH_NOT_ALLOWED', `protocol version ${version}`);
    if (json.length > ex.ctx.config.limits.batch) {
      throw new SluiceError(
        'SLUICE_ERR_BATCH_TOO_LARGE',
        `${json.length} messages, limit is ${ex.ctx.config.limits.batch}`,
      );
    }
  }
  const mismatch = headerBodyMismatch(req.headers, json);
  if (mismatch) throw new SluiceError('SLUICE_ERR_HEADER_MISMATCH', mismatch);
  if (logsPayloads(ex)) logRequestPayload(ex, json);
};

/**
 * Load shedding, just before the upstream: over limits.concurrency, 503 now rather than queue
 * without bound. Counted here, once the body is read, so that slow uploads (bounded by the body
 * deadline and memory budget instead) cannot fill the cap and starve requests that are ready.
 */
export const admit: Stage<DispatchedExchange> = (ex) => admitExchange(ex);

/** The admission rule itself, for the relay (admit) and the broker hand-off alike; once per exchange. */
export function admitExchange(ex: Exchange): void {
  if (ex.admitted) return;
  ex.admitted = true;
  const { ctx, res, req } = ex;
  // Its answer would queue behind one that closes the connection: it can never be delivered, so
  // it must not run. (The error answer queued here is dropped with the connection.)
  if (req.httpVersionMajor === 1 && behindClose(req))
    throw new SluiceError('SLUICE_ERR_BAD_REQUEST', 'pipelined behind an answer that closes the connection');
  ctx.inFlight++;
  res.once('close', () => ctx.inFlight--);
  const cap = ctx.config.limits.concurrency;
  if (cap > 0 && ctx.inFlight > cap)
    throw new SluiceError('SLUICE_ERR_OVERLOADED', `${cap} in flight`, { headers: { 'retry-after': '1' } });
}

/** select replica: new sessions and stateless requests are balanced; none available is a quick 503. */
export const selectReplica: Stage<RoutedExchange> = (ex) => {
  const route = ex.route;
  let replica = ex.replica;
  if (!replica) {
    const now = Date.now();
    replica = route.pool.pick(now) ?? route.pool.pickAnyway();
    if (!replica) {
      const retry = route.pool.retryAfter(now, route.config.healthCheck.interval);
      throw new SluiceError('SLUICE_ERR_NO_HEALTHY_UPSTREAM', `route ${route.path}`, {
        headers: { 'retry-after': String(retry) },
      });
    }
    ex.replica = replica;
  }
  ex.upstreamTarget = upstreamTarget(replica, ex.routeRest, ex.query);
};

/** Passive health: a connect failure or timeout (a 5xx where the route opts in) counts against the replica. */
export function replicaFailed(ex: RoutedExchange, replica: Replica): void {
  const route = ex.route;
  if (route.pool.failed(replica)) {
    ex.ctx.log.warn(
      { route: route.path, replica: replica.id, for: route.config.ejection.duration },
      'replica ejected after consecutive failures',
    );
  }
}

/** Passive health, the answer's twin of selectReplica: an answer clears the replica's failure count. */
export const recordAnswer: ResponseStage = (ex, head) => {
  const route = ex.route;
  if (head.status >= 500 && route.config.ejection.on5xx) replicaFailed(ex, head.replica);
  else route.pool.succeeded(head.replica);
};
