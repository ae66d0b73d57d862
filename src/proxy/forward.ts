// The terminal stage: send the request upstream and stream the answer back. JSON bodies flow
// with backpressure; SSE flows chunk by chunk, unbuffered, with heartbeats on silence, a cap on
// what a slow client may leave unread, and the HTTP+SSE endpoint rewrite when paths differ.
import { SluiceError } from '../core/errors.ts';
import { H } from '../core/mcp.ts';
import { publicEndpoint } from '../routing/route-table.ts';
import { SseBoundary } from '../transport/sse-boundary.ts';
import { SseEndpointRewriter } from '../transport/sse-endpoint-rewriter.ts';
import type { UpstreamResponse } from '../transport/upstream-client.ts';
import type { Drainable } from './context.ts';
import type { Stage } from './exchange.ts';
import { respondError } from './respond-error.ts';
import { downstreamResponseHeaders, isEventStream, upstreamRequestHeaders } from './upstream-headers.ts';

const HEARTBEAT = Buffer.from(': keep-alive\n\n');

export const forward: Stage = async (ex) => {
  const { ctx, req, res } = ex;
  const route = ex.route;
  const upstreamTarget = ex.upstreamTarget;
  if (!route || upstreamTarget === undefined) throw new SluiceError('SLUICE_ERR_INTERNAL', 'forward without a route');
  const timeouts = ctx.config.timeouts;
  const abort = new AbortController();
  const isPost = req.method === 'POST';

  let sse = false;
  let boundary: SseBoundary | undefined;
  let finished = false;
  const stopStream = (outcome: string, retryMs?: number): void => {
    if (finished) return;
    finished = true;
    ex.outcome = outcome;
    const code = outcome === 'shutdown' ? 'SLUICE_ERR_SHUTTING_DOWN' : outcome.endsWith('timeout') || outcome.endsWith('idle') ? 'SLUICE_ERR_UPSTREAM_TIMEOUT' : 'SLUICE_ERR_UPSTREAM_UNAVAILABLE';
    abort.abort(new SluiceError(code, outcome));
    if (!res.headersSent) return; // the awaiting request() call answers with the abort reason
    if (sse && boundary?.atBoundary()) {
      if (retryMs !== undefined) res.write(`retry: ${retryMs}\n\n`);
      res.end();
    } else {
      res.destroy();
    }
  };

  // A 2026-07-28 subscriptions/listen POST is a long-lived stream like a GET: shutdown ends it
  // at once (clients re-send it) instead of waiting for it as an in-flight request.
  const drainable: Drainable = {
    kind: isPost && ex.rpc?.method !== 'subscriptions/listen' ? 'request' : 'stream',
    stop: (retryMs) => stopStream('shutdown', retryMs),
  };
  ctx.active.add(drainable);
  res.once('close', () => {
    ctx.active.delete(drainable);
    if (!res.writableFinished && !finished) {
      finished = true;
      if (ex.outcome === 'ok') ex.outcome = 'client-closed';
      abort.abort(new SluiceError('SLUICE_ERR_BAD_REQUEST', 'client closed the connection'));
    }
  });

  const totalTimer =
    isPost && timeouts.request > 0
      ? setTimeout(() => {
          if (!res.headersSent) abort.abort(new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'request time limit reached'));
          else stopStream('request-timeout');
        }, timeouts.request)
      : undefined;

  let upstream: UpstreamResponse;
  try {
    upstream = await ctx.client.request({
      origin: route.origin,
      path: upstreamTarget,
      method: req.method ?? 'GET',
      headers: upstreamRequestHeaders(ex),
      body: ex.body,
      signal: abort.signal,
    });
  } catch (err) {
    clearTimeout(totalTimer);
    if (res.destroyed) return;
    respondError(ex, err);
    return;
  }

  sse = isEventStream(upstream.headers);
  const sessionHeader = upstream.headers[H.sessionId];
  ex.responseSessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
  res.writeHead(upstream.statusCode, downstreamResponseHeaders(upstream.headers, sse));
  if (sse) res.flushHeaders();

  const body = upstream.body;
  let idleTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  if (timeouts.streamIdle > 0) idleTimer = setTimeout(() => stopStream('upstream-idle'), timeouts.streamIdle);

  try {
    if (sse) {
      boundary = new SseBoundary();
      const rewriter =
        req.method === 'GET' && route.rewritesPaths ? new SseEndpointRewriter((data) => publicEndpoint(route, upstreamTarget, data)) : undefined;
      const cap = ctx.config.limits.sseClientBuffer;
      const b = boundary;
      const write = (chunk: Buffer): void => {
        if (chunk.length === 0) return;
        b.observe(chunk);
        ex.bytesOut += chunk.length;
        res.write(chunk);
        heartbeatTimer?.refresh();
        if (res.writableLength > cap) {
          ctx.log.warn({ route: route.path, buffered: res.writableLength, cap }, 'slow SSE client: stream closed');
          stopStream('slow-client');
        }
      };
      if (timeouts.heartbeat > 0) {
        heartbeatTimer = setInterval(() => {
          if (!finished && b.atBoundary()) {
            res.write(HEARTBEAT);
            ex.bytesOut += HEARTBEAT.length;
          }
        }, timeouts.heartbeat);
      }
      for await (const chunk of body as AsyncIterable<Buffer>) {
        idleTimer?.refresh();
        write(rewriter ? rewriter.push(chunk) : chunk);
        if (finished) break;
      }
      if (rewriter && !finished) write(rewriter.flush());
    } else {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        idleTimer?.refresh();
        ex.bytesOut += chunk.length;
        if (!res.write(chunk)) await waitForDrain(res);
        if (finished) break;
      }
    }
    if (!finished) {
      finished = true;
      res.end();
    }
  } catch (err) {
    if (!finished) {
      // Upstream broke mid-body. An SSE stream cut between events ends cleanly so clients can
      // resume; anything else is destroyed so a truncated body never looks complete.
      ctx.log.warn({ route: route.path, err: (err as Error).message }, 'upstream response broke off');
      stopStream('upstream-error');
    }
  } finally {
    clearTimeout(totalTimer);
    clearTimeout(idleTimer);
    clearInterval(heartbeatTimer);
    if (finished && !body.destroyed) body.destroy();
  }
};

function waitForDrain(res: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
