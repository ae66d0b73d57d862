// Sessions, both ways: the request stage that opens the client's session token (owner replica and
// the upstream's own id) and the response stages that seal upstream session ids into tokens, in
// `Mcp-Session-Id` and in the HTTP+SSE `endpoint` event. Upstream ids never reach clients.
import { SluiceError } from '../core/errors.ts';
import { H } from '../core/mcp.ts';
import type { Replica } from '../routing/replica-pool.ts';
import { publicEndpoint, rewritesPaths } from '../routing/route-table.ts';
import { findSessionParam, replaceParam } from '../session/query-session.ts';
import { hashPrincipal, openSession, sealSession, type SessionClaims } from '../session/token.ts';
import { SseEndpointRewriter } from '../transport/sse-endpoint-rewriter.ts';
import type { Exchange, ResponseStage, RoutedExchange, Stage } from './exchange.ts';

/** A session belongs to the principal that opened it (a hash of it): under anyone else its token does not open. */
export function principalHash(ex: Exchange): Buffer | undefined {
  return ex.principal ? hashPrincipal(ex.principal.key) : undefined;
}

/**
 * session: the client's Mcp-Session-Id (or, for HTTP+SSE, the POST URL's sessionId) is a Sluice
 * token; open it to the owner replica and the upstream's own id. A token that does not open
 * (tampered, foreign or removed key, another route) or whose owner is gone, ejected or past its
 * drain deadline is answered 404 here, with no upstream call: the spec's signal to start over.
 */
export const openSessionToken: Stage<RoutedExchange> = (ex) => {
  const raw = ex.req.headers[H.sessionId];
  if (raw !== undefined) {
    const token = Array.isArray(raw) ? raw[0] : raw;
    const claims = token ? openSession(ex.ctx.sessions, token, principalHash(ex)) : undefined;
    ex.replica = ownerOf(ex, claims);
    ex.upstreamSessionId = (claims as SessionClaims).upstreamSession;
    return;
  }
  if (ex.era !== 'http+sse') return;
  const param = findSessionParam(ex.query);
  if (!param) return;
  const claims = openSession(ex.ctx.sessions, param.value, principalHash(ex));
  ex.replica = ownerOf(ex, claims);
  ex.query = replaceParam(ex.query, param, (claims as SessionClaims).upstreamSession);
};

function ownerOf(ex: Exchange, claims: SessionClaims | undefined): Replica {
  const route = ex.route;
  const owner = claims && route && claims.route === route.path ? route.pool.owner(claims.replica) : undefined;
  if (!owner) throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND');
  ex.pinned = 'session';
  return owner;
}

/** A token for an upstream session minted on `replica`, bound to this exchange's caller. */
function seal(ex: RoutedExchange, replica: Replica, upstreamSession: string): string {
  try {
    return sealSession(ex.ctx.sessions, {
      route: ex.route.path,
      replica: replica.id,
      upstreamSession,
      principal: principalHash(ex),
      issuedAt: Math.floor(Date.now() / 1000),
    });
  } catch (err) {
    // A session id too long to seal: the upstream id must not reach the client either way.
    throw new SluiceError('SLUICE_ERR_UPSTREAM_PROTOCOL', (err as Error).message);
  }
}

/** An Mcp-Session-Id from the upstream reaches the client as a token that routes back to its replica. */
export const sealSessionToken: ResponseStage = (ex, head) => {
  const minted = head.upstream[H.sessionId];
  const upstreamSession = Array.isArray(minted) ? minted[0] : minted;
  if (upstreamSession === undefined) return;
  const token =
    upstreamSession === ex.upstreamSessionId
      ? (ex.req.headers[H.sessionId] as string)
      : seal(ex, head.replica, upstreamSession);
  head.headers[H.sessionId] = token;
  ex.responseSessionId = token;
};

/**
 * A GET stream without a session may be HTTP+SSE: its `endpoint` event gets the public path
 * (when the prefixes differ) and a sealed token in place of the upstream's sessionId.
 */
export const sealSseEndpoint: ResponseStage = (ex, head) => {
  if (!head.sse || ex.req.method !== 'GET' || ex.era !== undefined) return;
  const route = ex.route;
  const replica = head.replica;
  const upstreamTarget = ex.upstreamTarget;
  const paths = rewritesPaths(route, replica);
  head.transforms.push(
    new SseEndpointRewriter((data) => {
      const url = paths ? publicEndpoint(route, replica, upstreamTarget, data) : data;
      const q = url.indexOf('?');
      if (q === -1) return url;
      const query = url.slice(q);
      const param = findSessionParam(query);
      return param ? url.slice(0, q) + replaceParam(query, param, seal(ex, replica, param.value)) : url;
    }),
  );
};
