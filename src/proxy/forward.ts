// The terminal stage: send the request upstream and relay the answer. The answer's head goes
// through the response stages (pipeline.ts lists them); the body through the transforms they
// attached. What stays here is transport: dispatch and the move to another replica when a connect
// fails, timers, backpressure (the upstream read pauses while the client is slow), SSE written
// chunk by chunk with heartbeats on silence and a cap on what a slow client may leave unread, and
// drain. One Relay object per exchange holds it, because an idle SSE stream keeps exactly that
// object (plus its two sockets) alive.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { SluiceError, type Outcome } from '../core/errors.ts';
import { upstreamTarget } from '../routing/route-table.ts';
import type { Replica } from '../routing/replica-pool.ts';
import { chainOf, type BodyTransform } from '../transport/body-transform.ts';
import { carriesEventId, SseBoundary } from '../transport/sse-framing.ts';
import { isConnectFailure, type UpstreamCall, type UpstreamListener } from '../transport/upstream-client.ts';
import type { Drainable } from './context.ts';
import { observeHeartbeat, observeStreamOpened } from './exchange-observers.ts';
import type { DispatchedExchange, ResponseStage, RoutedExchange, Stage } from './exchange.ts';
import { fansIn, ListenFanIn } from './listen-fan-in.ts';
import { respondError } from './respond-error.ts';
import { replicaFailed } from './stages.ts';
import { answerHead, upstreamRequestHeaders } from './upstream-headers.ts';

const HEARTBEAT = Buffer.from(': keep-alive\n\n');
// Shared: a client that leaves needs no stack trace of its own.
const CLIENT_CLOSED = new SluiceError('SLUICE_ERR_BAD_REQUEST', 'client closed the connection');

/** What an exchange pinned by a sealed token answers when the replica behind it is gone. */
const PINNED_GONE = {
  session: 'SLUICE_ERR_SESSION_NOT_FOUND',
  'request-state': 'SLUICE_ERR_REQUEST_STATE_INVALID',
  task: 'SLUICE_ERR_TASK_NOT_FOUND',
} as const;

/**
 * A session's owner does not accept connections. With another replica to go to, the session is
 * over (404: the client starts again there). Without one, it may be restarting: 503 with a short
 * Retry-After keeps the session, and an upstream that lost it says 404 itself once it is back.
 */
function ownerUnreachable(ex: RoutedExchange, owner: Replica): SluiceError {
  const pool = ex.route.pool;
  if (pool.hasAlternative(owner))
    return new SluiceError(PINNED_GONE[ex.pinned ?? 'session'], 'the upstream replica that holds it is unreachable');
  return new SluiceError(
    'SLUICE_ERR_NO_HEALTHY_UPSTREAM',
    `route ${ex.route.path}: the session's replica does not accept connections`,
    { headers: { 'retry-after': '1' } },
  );
}

/** The forward stage, running `stages` on every answer's head. */
export function forwardWith(stages: readonly ResponseStage[]): Stage<DispatchedExchange> {
  return (ex) => {
    if (!ex.route || !ex.replica || ex.upstreamTarget === undefined)
      throw new SluiceError('SLUICE_ERR_INTERNAL', 'forward without a route');
    if (fansIn(ex)) new ListenFanIn(ex, stages).start();
    else new Relay(ex, stages).start();
  };
}

/** A transform that cannot go on: the upstream's body is not one Sluice can pass. */
function protocolError(err: unknown): SluiceError {
  return err instanceof SluiceError ? err : new SluiceError('SLUICE_ERR_UPSTREAM_PROTOCOL', (err as Error).message);
}

const RESULT_KEY = Buffer.from('"result":');
const ERROR_KEY = Buffer.from('"error":');

/**
 * Whether an SSE chunk carries a JSON-RPC response (a `"result":` or `"error":` key; a
 * notification has neither at its top level). A look at bytes, not a parse: a key split across two
 * chunks is missed, and a notification whose params hold such a key counts; either only changes
 * what the access log calls a client that left.
 */
function carriesResponse(chunk: Buffer): boolean {
  return chunk.includes(RESULT_KEY) || chunk.includes(ERROR_KEY);
}

class Relay implements UpstreamListener, Drainable {
  readonly kind: 'stream' | 'request';
  replica: Replica;
  private readonly ex: DispatchedExchange;
  /** Replicas already tried for this exchange (only a connect failure moves it on). */
  private tried: Replica[] | undefined;
  private readonly res: ServerResponse;
  private call: UpstreamCall | undefined;
  private finished = false;
  private sse = false;
  /** The SSE stream carried an event id: a client can resume it, so a broken upstream may end it cleanly. */
  private resumable = false;
  /**
   * The client has its answer: an SSE POST's stream carried a JSON-RPC response, or a JSON body
   * all its Content-Length. A client that leaves after that read to the end (clients close a
   * POST's stream once they have the response); one that leaves before it gave up.
   */
  private answered = false;
  private contentLength: number | undefined;
  private readonly stages: readonly ResponseStage[];
  private boundary: SseBoundary | undefined;
  private transform: BodyTransform | undefined;
  private totalTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private headersTimer: NodeJS.Timeout | undefined;
  private head: { statusCode: number; out: Record<string, string | string[]> } | undefined;
  private waitingForDrain = false;
  private released = false;

  constructor(ex: DispatchedExchange, stages: readonly ResponseStage[]) {
    this.ex = ex;
    this.stages = stages;
    this.replica = ex.replica;
    this.res = ex.res;
    // A 2026-07-28 subscriptions/listen POST is a long-lived stream like a GET: shutdown ends it
    // at once (clients re-send it) instead of waiting for it as an in-flight request.
    this.kind = ex.req.method === 'POST' && ex.rpc?.method !== 'subscriptions/listen' ? 'request' : 'stream';
  }

  start(): void {
    const { ex, res } = this;
    const { ctx } = ex;
    ctx.active.add(this);
    res.once('close', this.onClientClose);
    const limit = ctx.config.timeouts.request;
    // A long-lived stream (GET, or a 2026-07-28 subscriptions/listen POST) has no end to wait for.
    if (this.kind === 'request' && limit > 0) this.totalTimer = setTimeout(this.onRequestTimeout, limit);
    // Timed here rather than by undici, whose coarse timers fired up to 0.5 s late.
    const headers = ctx.config.timeouts.responseHeaders;
    if (headers > 0) this.headersTimer = setTimeout(this.onHeadersTimeout, headers);
    this.dispatch();
  }

  private dispatch(): void {
    const ex = this.ex;
    this.replica.outstanding++;
    this.call = ex.ctx.client.dispatch(
      {
        origin: this.replica.origin,
        policy: ex.route.policy,
        tls: ex.route.tls,
        path: ex.upstreamTarget,
        method: ex.req.method ?? 'GET',
        headers: upstreamRequestHeaders(ex),
        body: ex.body,
      },
      this,
    );
  }

  /**
   * The request never reached its replica. A session's request ends with 404: its owner is gone
   * and the client must start over. A new session or stateless request moves to another replica
   * (nothing ran, so this is no retry of a POST); when none is left, the connect error stands.
   */
  private moveOn(err: unknown): unknown {
    const ex = this.ex;
    if (ex.pinned) return ownerUnreachable(ex, this.replica);
    const pool = ex.route.pool;
    (this.tried ??= []).push(this.replica);
    const next = pool.pick(Date.now(), this.tried) ?? pool.pickAnyway(this.tried);
    if (next) {
      this.replica.outstanding--;
      this.replica = next;
      ex.replica = next;
      ex.upstreamTarget = upstreamTarget(next, ex.routeRest, ex.query);
      this.dispatch();
      return undefined;
    }
    return err;
  }

  /** Drainable: graceful shutdown. */
  stop(retryMs: number): void {
    this.end('shutdown', new SluiceError('SLUICE_ERR_SHUTTING_DOWN', 'shutdown'), retryMs);
  }

  replicaGone(replica: Replica, retryMs: number): void {
    if (replica === this.replica) this.stop(retryMs);
  }

  onHeaders(statusCode: number, headers: IncomingHttpHeaders): void {
    clearTimeout(this.headersTimer);
    const { ex, res } = this;
    const ctx = ex.ctx;
    const head = answerHead(statusCode, headers, this.replica);
    try {
      for (const stage of this.stages) stage(ex, head);
    } catch (err) {
      const refused = protocolError(err);
      return this.end(refused.code === 'SLUICE_ERR_UPSTREAM_AUTH' ? 'upstream-auth' : 'upstream-error', refused);
    }
    this.sse = head.sse;
    this.transform = chainOf(head.transforms);
    const t = ctx.config.timeouts;
    if (t.streamIdle > 0) this.idleTimer = setTimeout(this.onUpstreamIdle, t.streamIdle);
    if (!this.sse) {
      // Written with the first body byte: an upstream that breaks before any (a malformed chunk)
      // still gets the client a 502 instead of a cut connection.
      this.head = { statusCode, out: head.headers };
      const length = head.headers['content-length'];
      if (typeof length === 'string' && /^\d+$/.test(length)) this.contentLength = Number(length);
      return;
    }
    res.writeHead(statusCode, head.headers);
    ex.headersAt = performance.now();
    res.flushHeaders();
    observeStreamOpened(ex);
    this.boundary = new SseBoundary();
    if (t.heartbeat > 0) this.heartbeatTimer = setInterval(this.onHeartbeat, t.heartbeat);
  }

  onData(chunk: Buffer): void {
    if (this.finished) return;
    this.idleTimer?.refresh();
    if (this.transform) {
      try {
        chunk = this.transform.push(chunk);
      } catch (err) {
        return this.end('upstream-error', protocolError(err));
      }
      if (chunk.length === 0) return;
    }
    if (this.sse) return this.writeSse(chunk);
    this.writeHead();
    this.ex.bytesOut += chunk.length;
    if (!this.res.write(chunk)) {
      this.call?.pause();
      if (!this.waitingForDrain) {
        this.waitingForDrain = true;
        this.res.on('drain', this.onDrain);
      }
    }
  }

  onEnd(): void {
    if (this.finished) return;
    // The head first: the payload tap logs the status the client got.
    this.writeHead();
    if (this.transform) {
      let rest: Buffer;
      try {
        rest = this.transform.end();
      } catch (err) {
        return this.end('upstream-error', protocolError(err));
      }
      if (rest.length > 0) {
        if (this.sse) this.writeSse(rest);
        else {
          this.ex.bytesOut += rest.length;
          this.res.write(rest);
        }
      }
      if (this.finished) return; // the rest may have hit the slow-client cap
    }
    this.finished = true;
    this.res.end();
    this.cleanup();
  }

  onError(err: unknown): void {
    if (this.finished) return;
    if (!this.res.headersSent) {
      if ((err as SluiceError).code === 'SLUICE_ERR_UPSTREAM_REFUSED') this.logRefused(err as SluiceError);
      if ((err as SluiceError).code === 'SLUICE_ERR_UPSTREAM_TLS') {
        this.ex.ctx.log.warn(
          {
            security: 'upstream-tls-failed',
            route: this.ex.route?.path,
            replica: this.replica.id,
            reason: (err as SluiceError).message,
          },
          'upstream certificate refused',
        );
      }
      if (isConnectFailure(err) || (err as SluiceError).code === 'SLUICE_ERR_UPSTREAM_TIMEOUT')
        replicaFailed(this.ex, this.replica);
      let answer = err;
      if (isConnectFailure(err) && !this.res.destroyed) {
        answer = this.moveOn(err);
        if (answer === undefined) return;
      } else if (
        this.ex.pinned &&
        (err as SluiceError).code === 'SLUICE_ERR_UPSTREAM_UNAVAILABLE' &&
        !this.res.destroyed
      ) {
        // The connection broke before an answer. If the session's owner no longer accepts
        // connections it is gone, and so is the session: 404, the client's signal to start over.
        this.finished = true;
        const ex = this.ex;
        void ex.ctx.reachable(ex.route, this.replica).then((alive) => {
          this.cleanup();
          if (!this.res.destroyed) respondError(ex, alive ? err : ownerUnreachable(ex, this.replica));
        });
        return;
      }
      this.finished = true;
      this.cleanup();
      if (!this.res.destroyed) respondError(this.ex, answer);
      return;
    }
    // Upstream broke mid-body. An SSE stream cut between events ends cleanly so clients can
    // resume; anything else is destroyed so a truncated body never looks complete.
    this.ex.ctx.log.warn({ route: this.ex.route?.path, err: (err as Error).message }, 'upstream response broke off');
    this.end('upstream-error', new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', 'upstream-error'));
  }

  /** A security event, never sampled: the connect was refused by the route's address policy. */
  private logRefused(err: SluiceError): void {
    const refused = err.cause as { rule?: string; host?: string; address?: string } | undefined;
    const ex = this.ex;
    ex.ctx.log.warn(
      {
        security: 'upstream-address-refused',
        route: ex.route?.path,
        replica: this.replica.id,
        rule: refused?.rule,
        host: refused?.host,
        address: refused?.address,
      },
      'upstream address refused by the egress policy',
    );
  }

  /** The upstream's status and headers of a non-SSE answer, held until its first byte. */
  private writeHead(): void {
    const head = this.head;
    if (!head) return;
    this.head = undefined;
    this.res.writeHead(head.statusCode, head.out);
    this.ex.headersAt = performance.now();
  }

  private writeSse(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const { res, ex } = this;
    this.boundary!.observe(chunk);
    if (!this.resumable) this.resumable = carriesEventId(chunk);
    if (!this.answered && this.kind === 'request') this.answered = carriesResponse(chunk);
    ex.bytesOut += chunk.length;
    const flowing = res.write(chunk);
    this.heartbeatTimer?.refresh();
    const limits = ex.ctx.config.limits;
    if (res.writableLength > limits.sseClientBuffer) {
      ex.ctx.log.warn(
        { route: ex.route?.path, buffered: res.writableLength, cap: limits.sseClientBuffer },
        'slow SSE client: stream closed',
      );
      return this.end('slow-client', new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', 'slow-client'));
    }
    if (flowing) return;
    // Backpressure, as on the JSON path: the upstream waits while the client's socket is full,
    // so a burst (one 64 MiB event) reaches a fast client whole. Only a client that stays
    // behind for sseClientStall is cut.
    this.call?.pause();
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      res.on('drain', this.onDrain);
    }
    if (limits.sseClientStall > 0 && !this.stallTimer)
      this.stallTimer = setTimeout(this.onStalled, limits.sseClientStall);
  }

  /** End the exchange from Sluice's side: upstream aborted, client answered or cut. */
  private end(outcome: Outcome, reason: SluiceError, retryMs?: number): void {
    if (this.finished) return;
    this.finished = true;
    this.ex.outcome = outcome;
    this.call?.abort(reason);
    this.cleanup();
    const { res } = this;
    if (!res.headersSent) {
      if (!res.destroyed) respondError(this.ex, reason);
    } else if (this.sse && this.boundary?.atBoundary() && (outcome !== 'upstream-error' || this.resumable)) {
      // Ended by Sluice (shutdown, drain, limits) or after an event id: a clean end the client
      // resumes from. An upstream that broke a stream with nothing to resume from is a failure the
      // client (and any proxy in front) must see: the connection is cut, as it would be direct.
      if (retryMs !== undefined) res.write(`retry: ${retryMs}\n\n`);
      res.end();
    } else {
      res.destroy();
    }
  }

  private cleanup(): void {
    if (!this.released) {
      this.released = true;
      this.replica.outstanding--;
    }
    clearTimeout(this.totalTimer);
    clearTimeout(this.idleTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.headersTimer);
  }

  // Handlers as bound fields: created once per exchange, used as listener and timer callbacks.
  private readonly onClientClose = (): void => {
    this.ex.ctx.active.delete(this);
    if (this.finished) return;
    this.finished = true;
    const delivered = this.answered || (this.contentLength !== undefined && this.ex.bytesOut >= this.contentLength);
    if (this.ex.outcome === 'ok' && !delivered) this.ex.outcome = 'client-closed';
    this.call?.abort(CLIENT_CLOSED);
    this.cleanup();
  };

  private readonly onDrain = (): void => {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.call?.resume();
  };

  private readonly onStalled = (): void => {
    const { ex, res } = this;
    ex.ctx.log.warn(
      { route: ex.route?.path, buffered: res.writableLength, stalledMs: ex.ctx.config.limits.sseClientStall },
      'slow SSE client: stream closed',
    );
    this.end('slow-client', new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', 'slow-client'));
  };

  private readonly onRequestTimeout = (): void => {
    this.end(
      'request-timeout',
      new SluiceError(
        'SLUICE_ERR_UPSTREAM_TIMEOUT',
        this.res.headersSent ? 'request-timeout' : 'request time limit reached',
      ),
    );
  };

  private readonly onHeadersTimeout = (): void => {
    replicaFailed(this.ex, this.replica);
    this.end('upstream-timeout', new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no response headers in time'));
  };

  private readonly onUpstreamIdle = (): void => {
    this.end('upstream-idle', new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'upstream-idle'));
  };

  private readonly onHeartbeat = (): void => {
    if (this.finished || !this.boundary?.atBoundary()) return;
    this.res.write(HEARTBEAT);
    this.ex.bytesOut += HEARTBEAT.length;
    observeHeartbeat(this.ex);
  };
}
