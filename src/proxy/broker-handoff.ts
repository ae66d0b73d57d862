// The hand-off to a broker route (DESIGN §6): a broker speaks MCP itself, but the exchange it gets
// keeps every guarantee the relay keeps. Here, the one place an exchange is handed over: the
// relay's admission (limits.concurrency, the pipelining rule) first; then the exchange is one of
// the gateway's drainable exchanges (a POST finishes within shutdown.drain, a stream ends at
// once), and a POST has its deadline (timeouts.request; an answer not started within
// timeouts.responseHeaders is a 504, as on the relay). A broker that answers on a stream of its
// own ends the call there at the deadline (a JSON-RPC error event) and tells its upstream.
import { SluiceError } from '../core/errors.ts';
import type { Drainable } from './context.ts';
import type { RoutedExchange, Stage } from './exchange.ts';
import { respondError } from './respond-error.ts';
import { admitExchange } from './stages.ts';

/** How long after its deadline a broker's own stream may take to end the call before it is cut. */
const STREAM_END_GRACE_MS = 1000;

export const handOff: Stage<RoutedExchange> = (ex) => {
  const broker = ex.route.broker;
  if (!broker) return undefined;
  admitExchange(ex);
  const watch = watched(ex);
  let pending: Promise<void> | undefined;
  try {
    pending = broker.handle(ex);
  } catch (err) {
    watch.release();
    throw err;
  }
  // Left to the relay (a bridging route's same-era client): its own Relay keeps these guarantees.
  if (!pending) {
    if (!ex.handedOff) watch.release();
    return undefined;
  }
  return pending.then(
    () => {
      if (!ex.handedOff) watch.release();
    },
    (err: unknown) => {
      if (!ex.handedOff) watch.release();
      throw err;
    },
  );
};

/** Registers the exchange for drain and starts its deadline; `release` undoes both (the relay takes it). */
function watched(ex: RoutedExchange): { release(): void } {
  const { ctx, req, res } = ex;
  const request = req.method === 'POST' && ex.rpc?.method !== 'subscriptions/listen';
  const drainable: Drainable = {
    kind: request ? 'request' : 'stream',
    stop: () => {
      if (res.writableEnded || res.destroyed) return;
      if (!res.headersSent) respondError(ex, new SluiceError('SLUICE_ERR_SHUTTING_DOWN', 'shutdown'));
      // A broker's event stream ends here; its client resumes elsewhere (GET with Last-Event-ID, or anew).
      else res.end();
    },
    replicaGone: () => undefined,
  };
  ctx.active.add(drainable);
  const { sseClientBuffer, sseClientStall } = ctx.config.limits;
  ex.slowClient = {
    buffer: sseClientBuffer,
    stallMs: sseClientStall,
    cut: (buffered) => {
      ex.outcome = 'slow-client';
      ctx.log.warn({ route: ex.route.path, buffered, cap: sseClientBuffer }, 'slow SSE client: stream closed');
    },
  };
  const timers: NodeJS.Timeout[] = [];
  const { request: limit, responseHeaders } = ctx.config.timeouts;
  if (request && limit > 0) {
    ex.deadline = Date.now() + limit;
    timers.push(
      setTimeout(() => {
        if (res.writableEnded || res.destroyed) return;
        if (!res.headersSent) {
          ex.outcome = 'request-timeout';
          return respondError(ex, new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'request time limit reached'));
        }
        timers.push(setTimeout(() => res.writableEnded || res.destroy(), STREAM_END_GRACE_MS));
      }, limit),
    );
  }
  if (request && responseHeaders > 0 && (limit === 0 || responseHeaders < limit))
    timers.push(
      setTimeout(() => {
        if (res.headersSent || res.writableEnded || res.destroyed) return;
        respondError(ex, new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no answer started in time'));
      }, responseHeaders),
    );
  const release = (): void => {
    ctx.active.delete(drainable);
    for (const t of timers) clearTimeout(t);
  };
  res.once('close', release);
  return { release };
}
