// The one seam between the request path and what watches it: the pipeline and the forwarding
// loop say what happened to an exchange (started, an SSE stream opened, a heartbeat, ended), and
// each observer (traces, access log, metrics) turns that into its own records. Nothing else in
// the request path knows the access log, the metrics or the tracer.
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { isErrorCode } from '../core/errors.ts';
import {
  formatAccessLine,
  hashSessionId,
  pathForLog,
  securityEventOf,
  type AccessRecord,
} from '../observability/access-log.ts';
import type { ExchangeObservation, GatewayMetrics } from '../observability/metrics.ts';
import { clientAddress } from '../security/forwarded.ts';
import { routeLabel } from './context.ts';
import { clientSessionOf, type Exchange } from './exchange.ts';
import { forwardedOf } from './upstream-headers.ts';

/** Starts watching an exchange: its span (parent of the upstream request), and its end. */
export function observeStart(ex: Exchange): void {
  const { ctx, req, res } = ex;
  if (ctx.tracing) {
    ex.span = ctx.tracing.tracer.startSpan(
      req.method ?? 'HTTP',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? '' } },
      ctx.tracing.extract(req.headers),
    );
  }
  // Recorded after the close event has reached every listener (a microtask later), so each
  // stage's own close handler has set the outcome first.
  res.once('close', () => queueMicrotask(() => observeEnd(ex)));
}

function observeEnd(ex: Exchange): void {
  const { ctx } = ex;
  const access = ctx.access;
  if (access) {
    const record = accessRecord(ex);
    if (ex.sampled || record.security) access(formatAccessLine(record, new Date().toISOString()));
  }
  if (ctx.metrics) observe(ex, ctx.metrics);
  if (ex.span) endSpan(ex, ex.span);
}

/** An SSE answer's head went out: the stream counts as open until the exchange ends. */
export function observeStreamOpened(ex: Exchange): void {
  const route = routeLabel(ex.ctx, ex.route?.path);
  if (!ex.ctx.metrics || route === undefined) return;
  ex.ctx.metrics.streamOpened(route, replicaKey(ex));
  ex.streamCounted = true;
}

export function observeHeartbeat(ex: Exchange): void {
  const route = routeLabel(ex.ctx, ex.route?.path);
  if (route !== undefined) ex.ctx.metrics?.heartbeat(route);
}

/** Names and closes the exchange's span with what the stages learned. */
function endSpan(ex: Exchange, span: Span): void {
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

function observe(ex: Exchange, metrics: GatewayMetrics): void {
  const { ctx, res } = ex;
  const route = routeLabel(ctx, ex.route?.path);
  if (ex.streamCounted && route !== undefined) metrics.streamClosed(route, replicaKey(ex));
  // Only sessions Sluice opened or minted count as active: forged ids must not fill the tracker.
  const session = clientSessionOf(ex, true);
  metrics.observeExchange({
    route,
    rpcMethod: ex.rpc?.method,
    status: res.headersSent ? res.statusCode : 0,
    headersMs: ex.headersAt === undefined ? undefined : ex.headersAt - ex.startedAt,
    totalMs: performance.now() - ex.startedAt,
    bytesIn: ex.body?.length ?? 0,
    bytesOut: ex.bytesOut,
    refusedCode: isErrorCode(ex.outcome) ? ex.outcome : undefined,
    sessionHash: hashSessionId(session),
    replica: replicaKey(ex),
    refusal: refusalOf(ex),
  });
}

/** How the admin page names the replica an exchange went to: route path and replica id. */
function replicaKey(ex: Exchange): string | undefined {
  return ex.replica && ex.route ? `${ex.route.path} ${ex.replica.id}` : undefined;
}

function refusalOf(ex: Exchange): NonNullable<ExchangeObservation['refusal']> | undefined {
  const reason = securityEventOf(ex.outcome);
  if (!reason) return undefined;
  return {
    reason,
    code: ex.outcome,
    method: ex.req.method ?? '',
    rpcMethod: ex.rpc?.method,
    client: clientAddress(forwardedOf(ex), ex.ctx.trusted),
  };
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
    kind: ex.handedOff ? 'broker' : 'relay',
    upstream: ex.replica ? ex.replica.origin + pathForLog(ex.upstreamTarget ?? '') : ex.brokerUpstream,
    replica: ex.replica?.id,
    server: ex.federatedServer,
    session: hashSessionId(clientSessionOf(ex)),
    error: ex.error,
    outcome: ex.outcome,
    security: securityEventOf(ex.outcome),
  };
}
