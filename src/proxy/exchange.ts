// One client request and what the stages learn about it; the single argument of every stage.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Outcome } from '../core/errors.ts';
import { H, type Era, type JsonRpcSummary } from '../core/mcp.ts';
import { findSessionParam } from '../session/query-session.ts';
import type { Replica } from '../routing/replica-pool.ts';
import type { HostOriginPolicy } from '../security/host-origin.ts';
import type { BodyTransform } from '../transport/body-transform.ts';
import type { PinKind } from '../session/token.ts';
import type { Principal } from '../security/principal.ts';
import type { GatewayContext, GatewayRoute } from './context.ts';

export interface Exchange {
  readonly ctx: GatewayContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly startedAt: number;
  /** The Host/Origin allow lists of the listener the request came in on. */
  readonly listener: HostOriginPolicy;
  /** Origin-form request target (path + query), set by the head check. */
  target: string;
  /** Lowest depth a `..` in the request path popped to (Infinity: none); see security/request-path.ts. */
  pathFloor: number;
  route: GatewayRoute | undefined;
  /** The request path below the route prefix, and the query ('?…' or ''), set with the route. */
  routeRest: string;
  query: string;
  /** The session's owner, or the replica picked for a new session / stateless request. */
  replica: Replica | undefined;
  /** The replica came from a sealed token (session, requestState, task id): it must go there or nowhere. */
  pinned: PinKind | undefined;
  /** The Mcp-Name the upstream gets in place of the client's (a task id opened from its token). */
  upstreamName: string | undefined;
  upstreamTarget: string | undefined;
  body: Buffer | undefined;
  rpc: JsonRpcSummary | undefined;
  era: Era | undefined;
  bytesOut: number;
  /** How the exchange ended, for the access log, metrics and traces. */
  outcome: Outcome;
  error: string | undefined;
  responseSessionId: string | undefined;
  /** The upstream's own session id, opened from the client's token. */
  upstreamSessionId: string | undefined;
  /** performance.now() when the response headers were written. */
  headersAt: number | undefined;
  /** The exchange counts in the open-SSE-streams gauge until it closes. */
  streamCounted: boolean;
  /** Its ordinary log records (access line, payloads) are written (logging.sample). */
  sampled: boolean;
  /** The exchange's trace span, when tracing is on. */
  span: Span | undefined;
  /** Who is calling, when the route authenticates (resource-server mode). */
  principal: Principal | undefined;
  /** The route's own credential for the upstream, in place of the client's token. */
  upstreamCredential: { header: string; value: string } | undefined;
  /** The messages of a JSON-RPC batch (policy checks each). */
  batch: unknown[] | undefined;
  /** On a broker route: the body as classify parsed it, so the broker never parses it again. */
  message: unknown;
  /** A broker route took the exchange over: no relay stage runs after it. */
  handedOff: boolean;
  /** Counted against limits.concurrency (once, by the relay's admit or the broker hand-off). */
  admitted: boolean;
  /** On a broker route, a POST: when it must be over (epoch ms, timeouts.request). */
  deadline: number | undefined;
  /** On a broker route: its streams' slow-client caps (limits.sseClientBuffer, sseClientStall). */
  slowClient: { readonly buffer: number; readonly stallMs: number; cut(buffered: number): void } | undefined;
  /** On a broker route: what served the exchange (a stdio child: command#pid), for the access log. */
  brokerUpstream: string | undefined;
  /** On a federated route: the server the request went to, for the access log. */
  federatedServer: string | undefined;
  /** On a federated route: a server's own credential (its `upstreamCredential`), when it has one. */
  serverCredential: ((server: string) => Promise<{ header: string; value: string }> | undefined) | undefined;
}

/** An exchange once selectRoute has run (it throws when nothing matches): the route is set. */
export interface RoutedExchange extends Exchange {
  route: GatewayRoute;
}

/** Once selectReplica has run: the replica to send to and the upstream target are set. */
export interface DispatchedExchange extends RoutedExchange {
  replica: Replica;
  upstreamTarget: string;
}

/**
 * A request stage. It may enrich the exchange, throw a SluiceError to answer, or answer itself
 * (last stage). Stages after selectRoute take a RoutedExchange, after selectReplica a
 * DispatchedExchange: pipeline.ts groups them so, and the type carries what earlier stages set.
 */
export type Stage<E extends Exchange = Exchange> = (ex: E) => void | Promise<void>;

/** The upstream's answer head on its way to the client, as the response stages build it. */
export interface ResponseHead {
  readonly status: number;
  /** The upstream's headers as they arrived. */
  readonly upstream: IncomingHttpHeaders;
  /** What the client gets: set by crossResponseHeaders, adjusted by the stages after it. */
  headers: Record<string, string | string[]>;
  /** The body is an SSE stream (written as it comes, unbuffered). */
  readonly sse: boolean;
  /** The replica that answered. */
  readonly replica: Replica;
  /** Body transforms, run in the order the stages attached them. */
  readonly transforms: BodyTransform[];
}

/**
 * A response-head stage: reads the upstream's status and headers, adjusts what the client gets,
 * may attach a body transform, or throws a SluiceError to refuse the answer (the exchange ends
 * with that error instead; nothing of the upstream's answer reaches the client).
 */
export type ResponseStage = (ex: DispatchedExchange, head: ResponseHead) => void;

export function newExchange(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  listener: HostOriginPolicy,
): Exchange {
  return {
    ctx,
    req,
    res,
    startedAt: performance.now(),
    listener,
    target: '',
    pathFloor: Infinity,
    route: undefined,
    routeRest: '',
    query: '',
    replica: undefined,
    pinned: undefined,
    upstreamName: undefined,
    upstreamTarget: undefined,
    body: undefined,
    rpc: undefined,
    era: undefined,
    bytesOut: 0,
    outcome: 'ok',
    error: undefined,
    responseSessionId: undefined,
    upstreamSessionId: undefined,
    headersAt: undefined,
    streamCounted: false,
    sampled: true,
    span: undefined,
    principal: undefined,
    upstreamCredential: undefined,
    batch: undefined,
    message: undefined,
    handedOff: false,
    admitted: false,
    deadline: undefined,
    slowClient: undefined,
    brokerUpstream: undefined,
    federatedServer: undefined,
    serverCredential: undefined,
  };
}

/**
 * The session this exchange belongs to, as the client knows it (a Sluice token): the one it sent
 * (Mcp-Session-Id, else HTTP+SSE's query parameter as it arrived), else the one minted on this
 * answer. `opened`: only a token Sluice opened or minted, so that forged ids never count.
 */
export function clientSessionOf(ex: Exchange, opened = false): string | undefined {
  const header = ex.req.headers[H.sessionId];
  if (typeof header === 'string' && (!opened || ex.upstreamSessionId !== undefined)) return header;
  if (ex.responseSessionId !== undefined || opened) return ex.responseSessionId;
  const q = ex.target.indexOf('?');
  return q === -1 ? undefined : findSessionParam(ex.target.slice(q))?.value;
}
