// The order of the request stages lives here and only here (docs/architecture.md §3 describes each).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  formatAccessLine,
  hashSessionId,
  pathForLog,
  securityEventOf,
  type AccessRecord,
} from '../observability/access-log.ts';
import type { HostOriginPolicy } from '../security/host-origin.ts';
import { routeLabel, type GatewayContext } from './context.ts';
import { isErrorCode } from '../core/errors.ts';
import {
  clientSessionOf,
  newExchange,
  type DispatchedExchange,
  type Exchange,
  type ResponseStage,
  type RoutedExchange,
  type Stage,
} from './exchange.ts';
import { forwardWith } from './forward.ts';
import { clientAddress } from '../security/forwarded.ts';
import { forwardedOf } from './upstream-headers.ts';
import { respondError } from './respond-error.ts';
import { arrived, closesConnection } from './connection-order.ts';
import {
  authenticate,
  authorize,
  filterLists,
  publicChallenge,
  refuseRejectedCredential,
  serveResourceMetadata,
} from './auth-stages.ts';
import { tapPayloads } from './payload-log.ts';
import { openSessionToken, sealSessionToken, sealSseEndpoint } from './session-stages.ts';
import {
  admit,
  applyCors,
  checkHead,
  checkHostOrigin,
  classify,
  ownCorsHeaders,
  readRequestBody,
  recordAnswer,
  selectReplica,
  selectRoute,
} from './stages.ts';
import { crossResponseHeaders, refuseEncodedBody } from './upstream-headers.ts';

/**
 * What happens to an upstream answer's head, in order, before the client sees it. Each stage
 * lives beside its request-side twin; the body transforms they attach run in this order too.
 */
export const RESPONSE_STAGES: readonly ResponseStage[] = [
  recordAnswer,
  refuseRejectedCredential,
  refuseEncodedBody,
  crossResponseHeaders,
  ownCorsHeaders,
  publicChallenge,
  filterLists,
  sealSessionToken,
  sealSseEndpoint,
  tapPayloads,
];

/**
 * Stages after selectRoute may rely on the route (it throws when none matches), stages after
 * selectReplica on the replica and upstream target; their types say so, and this list is the one
 * place that orders them, so it is the one place that widens them back to `Stage`.
 */
const routed = (...stages: Stage<RoutedExchange>[]): Stage[] => stages as Stage[];
const dispatched = (...stages: Stage<DispatchedExchange>[]): Stage[] => stages as Stage[];

export const STAGES: readonly Stage[] = [
  checkHead,
  serveResourceMetadata,
  selectRoute,
  ...routed(
    checkHostOrigin,
    applyCors,
    authenticate,
    readRequestBody,
    classify,
    authorize,
    openSessionToken,
    selectReplica,
  ),
  ...dispatched(admit, forwardWith(RESPONSE_STAGES)),
];

export function handleRequest(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  listener: HostOriginPolicy,
): void {
  // HTTP/2 names the authority :authority; every stage reads Host.
  if (req.httpVersionMajor === 2 && req.headers.host === undefined && typeof req.headers[':authority'] === 'string')
    req.headers.host = req.headers[':authority'];
  // A client that asked for its connection to close after this request: anything it pipelined
  // behind it is not run (stages.ts admit).
  if (req.httpVersionMajor === 1) {
    arrived(req);
    const connection = req.headers.connection;
    if (
      req.httpVersionMinor === 0
        ? !/keep-alive/i.test(connection ?? '')
        : connection !== undefined && /close/i.test(connection)
    )
      closesConnection(req);
  }
  const ex = newExchange(ctx, req, res, listener);
  // Logged after the close event has reached every listener (a microtask later), so each
  // stage's own close handler has recorded the outcome first.
  const access = ctx.access;
  const rate = ctx.config.logging.sample;
  ex.sampled = rate >= 1 || Math.random() < rate;
  if (access) {
    res.once('close', () =>
      queueMicrotask(() => {
        const record = accessRecord(ex);
        if (ex.sampled || record.security) access(formatAccessLine(record, new Date().toISOString()));
      }),
    );
  }
  if (ctx.metrics) res.once('close', () => queueMicrotask(() => observe(ex)));
  if (ctx.tracing) {
    ex.span = ctx.tracing.tracer.startSpan(
      req.method ?? 'HTTP',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? '' } },
      ctx.tracing.extract(req.headers),
    );
    res.once('close', () => queueMicrotask(() => endSpan(ex)));
  }
  run(ex);
}

// Stages run synchronously until one returns a promise; only then does the exchange wait. Most
// stages are synchronous, and an await per stage is a microtask per stage per request. A stage
// that answered (a CORS preflight) ends the run.
function run(ex: Exchange, from = 0): void {
  for (let i = from; i < STAGES.length; i++) {
    if (ex.res.headersSent) return;
    let pending: void | Promise<void>;
    try {
      pending = (STAGES[i] as Stage)(ex);
    } catch (err) {
      respondError(ex, err);
      return;
    }
    if (pending) {
      pending.then(
        () => run(ex, i + 1),
        (err: unknown) => respondError(ex, err),
      );
      return;
    }
  }
}

/** Names and closes the exchange's span with what the stages learned. */
function endSpan(ex: Exchange): void {
  const span = ex.span!;
  const status = ex.res.headersSent ? ex.res.statusCode : 0;
  const rpc = ex.rpc;
  span.updateName(
    rpc?.method
      ? `${rpc.method}${rpc.name ? ` ${rpc.name}` : ''}`
      : `${ex.req.method ?? 'HTTP'} ${ex.route?.path ?? ''}`.trim(),
  );
  span.setAttributes({
    'url.path': pathForLog(ex.target || ex.req.url || ''),
    'http.response.status_code': status,
    'sluice.outcome': ex.outcome,
    ...(ex.route ? { 'sluice.route': ex.route.path } : {}),
    ...(ex.replica ? { 'sluice.replica': ex.replica.id } : {}),
    ...(ex.era ? { 'sluice.era': ex.era } : {}),
    ...(rpc?.method ? { 'mcp.method.name': rpc.method } : {}),
    ...(rpc?.method === 'tools/call' && rpc.name ? { 'gen_ai.tool.name': rpc.name } : {}),
    ...(rpc?.method === 'prompts/get' && rpc.name ? { 'gen_ai.prompt.name': rpc.name } : {}),
    ...(typeof ex.req.headers['mcp-protocol-version'] === 'string'
      ? { 'mcp.protocol.version': ex.req.headers['mcp-protocol-version'] }
      : {}),
  });
  if (status >= 500 || (status === 0 && ex.outcome !== 'client-closed'))
    span.setStatus({ code: SpanStatusCode.ERROR, message: ex.outcome });
  span.end();
}

function observe(ex: Exchange): void {
  const { ctx, res } = ex;
  const route = routeLabel(ctx, ex.route?.path);
  if (ex.streamCounted) ctx.metrics!.streamClosed(route!);
  // Only sessions Sluice opened or minted count as active: forged ids must not fill the tracker.
  const session = clientSessionOf(ex, true);
  ctx.metrics!.observeExchange({
    route,
    rpcMethod: ex.rpc?.method,
    status: res.headersSent ? res.statusCode : 0,
    headersMs: ex.headersAt === undefined ? undefined : ex.headersAt - ex.startedAt,
    totalMs: performance.now() - ex.startedAt,
    bytesIn: ex.body?.length ?? 0,
    bytesOut: ex.bytesOut,
    refusedCode: isErrorCode(ex.outcome) ? ex.outcome : undefined,
    sessionHash: hashSessionId(session),
  });
}

function accessRecord(ex: Exchange): AccessRecord {
  const { req, res } = ex;
  return {
    route: ex.route?.path,
    method: req.method ?? '',
    path: pathForLog(ex.target || req.url || ''),
    client: clientAddress(forwardedOf(ex), ex.ctx.trusted),
    status: res.headersSent ? res.statusCode : 0,
    era: ex.era,
    rpcMethod: ex.rpc?.method,
    rpcName: ex.rpc?.name,
    latencyMs: Math.round((performance.now() - ex.startedAt) * 10) / 10,
    bytesIn: ex.body?.length ?? 0,
    bytesOut: ex.bytesOut,
    upstream: ex.replica ? ex.replica.origin + pathForLog(ex.upstreamTarget ?? '') : undefined,
    replica: ex.replica?.id,
    session: hashSessionId(clientSessionOf(ex)),
    error: ex.error,
    outcome: ex.outcome,
    security: securityEventOf(ex.outcome),
  };
}
