// Which headers cross the gateway, each way. Everything end-to-end passes untouched (Mcp-*,
// Authorization, Accept, Content-Type, Last-Event-ID, Origin, unknown Mcp-Param-*...); only
// hop-by-hop headers, framing, and the forwarding headers Sluice owns are replaced. Response
// headers that later stages change: Access-Control-* (ownCorsHeaders, stages.ts),
// WWW-Authenticate (publicChallenge, auth-stages.ts), Mcp-Session-Id (sealSessionToken,
// session-stages.ts), Content-Length of a filtered list (filterLists, auth-stages.ts).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { forwardedHeaders, isTrusted, readForwarded, type ForwardedIn } from '../security/forwarded.ts';
import { hopByHopNames } from '../security/hop-by-hop.ts';
import { SluiceError } from '../core/errors.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { Exchange, ResponseHead, ResponseStage } from './exchange.ts';

const OWNED_REQUEST = new Set([
  'host',
  'content-length',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'accept-encoding',
  'expect',
]);

/**
 * The request headers for the upstream as a flat [name, value, …] list in the client's order,
 * every repeated field kept as sent. Built from rawHeaders: no per-request header object.
 */
export function upstreamRequestHeaders(ex: Exchange): string[] {
  const req: IncomingMessage = ex.req;
  const drop = hopByHopNames(req.headers.connection);
  const raw = req.rawHeaders;
  const out: string[] = [];
  const traced = ex.span !== undefined;
  // Resource-server mode: the client's token stops here; the upstream gets the route's own credential.
  const credential = ex.upstreamCredential;
  const ownAuth = ex.principal !== undefined || credential !== undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (ownAuth && (name === 'authorization' || name === credential?.header)) continue;
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are the request line, not fields.
    if (drop.has(name) || OWNED_REQUEST.has(name) || name.charCodeAt(0) === 58) continue;
    // With tracing on, Sluice's span is the upstream's parent.
    if (traced && (name === 'traceparent' || name === 'tracestate')) continue;
    // The client holds a Sluice token; the upstream gets back the id it minted.
    // So does a task id in Mcp-Name (replica-state.ts), which the upstream checks against the body.
    out.push(
      name,
      name === 'mcp-session-id' && ex.upstreamSessionId !== undefined
        ? ex.upstreamSessionId
        : name === 'mcp-name' && ex.upstreamName !== undefined
          ? ex.upstreamName
          : (raw[i + 1] as string),
    );
  }
  const fwd = forwardedHeaders(forwardedOf(ex));
  for (const name in fwd) out.push(name, fwd[name] as string);
  if (ex.route?.preserveHost && req.headers.host) out.push('host', req.headers.host);
  if (traced) for (const [name, value] of Object.entries(ex.ctx.tracing!.inject(ex.span!))) out.push(name, value);
  if (credential) out.push(credential.header, credential.value);
  // Sluice may add heartbeats to SSE and rewrite HTTP+SSE endpoint events: it needs plain bytes.
  out.push('accept-encoding', 'identity');
  return out;
}

/** What this hop knows of the client: peer, whether it is a trusted proxy, TLS, the forwarding headers. */
export function forwardedOf(ex: Exchange): ForwardedIn {
  const { req } = ex;
  const peer = req.socket.remoteAddress;
  const encrypted = 'encrypted' in req.socket && Boolean(req.socket.encrypted);
  return readForwarded(req.headers, peer, isTrusted(ex.ctx.trusted, peer), encrypted);
}

export function isEventStream(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): boolean {
  const ct = headers['content-type'];
  const v = Array.isArray(ct) ? ct[0] : ct;
  return v !== undefined && v.trimStart().toLowerCase().startsWith('text/event-stream');
}

/**
 * Sluice asks for identity. An SSE stream or a filtered list compressed anyway cannot take
 * heartbeats, the endpoint rewrite or filtering without being corrupted: refused, not mangled.
 */
export const refuseEncodedBody: ResponseStage = (ex, head) => {
  const encoding = head.upstream['content-encoding'];
  if (encoding === undefined || /^\s*identity\s*$/i.test(String(encoding))) return;
  const guard = ex.route.guard;
  if (!head.sse && !(guard && !guard.policy.open)) return;
  ex.ctx.log.warn(
    { route: ex.route.path, replica: head.replica.id, encoding: String(encoding) },
    'upstream sent a content-encoded stream despite accept-encoding: identity',
  );
  throw new SluiceError(
    'SLUICE_ERR_UPSTREAM_PROTOCOL',
    `content-encoding ${String(encoding)} on a response Sluice must read`,
  );
};

/** The answer's headers: everything end-to-end, minus hop-by-hop; SSE marked unbufferable. */
export const crossResponseHeaders: ResponseStage = (_ex, head) => {
  head.headers = downstreamResponseHeaders(head.upstream, head.sse);
};

export function downstreamResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  sse: boolean,
): Record<string, string | string[]> {
  const drop = hopByHopNames(upstream['connection']);
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const v = upstream[name];
    if (v === undefined || drop.has(name)) continue;
    out[name] = v;
  }
  if (sse) {
    // Streams are chunked by us and must not be held by anything downstream.
    delete out['content-length'];
    out['cache-control'] = 'no-cache';
    out['x-accel-buffering'] = 'no';
  }
  return out;
}

/** An upstream answer's head as the response stages start from it (nothing decided for the client yet). */
export function answerHead(status: number, upstream: IncomingHttpHeaders, replica: Replica): ResponseHead {
  return { status, upstream, headers: {}, sse: isEventStream(upstream), replica, transforms: [] };
}
