// One subscriptions/listen stream that hears every replica (issue 18 part 3). A 2026-07-28 server
// keeps its subscription bus in its own process, so on a route of several replicas a listen that
// reached one of them hears only that one's changes. Here the client's listen is opened on every
// replica that takes work (a leg each); the client gets one acknowledgement (the legs' filters
// merged), then every leg's notifications, with the same idempotent change signal from several
// legs within DEDUPE_MS passed once, and Sluice's heartbeats while silent. A leg that fails or
// ends is dropped (and reopened with backoff while its replica still takes work), a replica that
// joins gets a leg, one removed or past its drain deadline loses it; the client's stream ends
// only when no leg is left, and its closing closes every leg. Task ids in the listen's filter go
// only to the replica that holds them (replica-state.ts), and each leg's answer goes through
// the response stages like any answer, so what a leg says about its tasks reaches the client sealed.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { SluiceError, type Outcome } from '../core/errors.ts';
import { upstreamTarget } from '../routing/route-table.ts';
import type { Replica } from '../routing/replica-pool.ts';
import { open } from '../session/token.ts';
import { chainOf, type BodyTransform } from '../transport/body-transform.ts';
import { isJsonObject, type JsonObject } from '../transport/json-message-rewriter.ts';
import { eventData, SseFramer } from '../transport/sse-framing.ts';
import type { UpstreamCall, UpstreamListener } from '../transport/upstream-client.ts';
import type { Drainable } from './context.ts';
import { observeHeartbeat, observeStreamOpened } from './exchange-observers.ts';
import type { DispatchedExchange, ResponseStage } from './exchange.ts';
import { sealsState } from './replica-state.ts';
import { respondError } from './respond-error.ts';
import { principalHash } from './session-stages.ts';
import { replicaFailed } from './stages.ts';
import { answerHead, upstreamRequestHeaders } from './upstream-headers.ts';

/** The same change signal from several replicas within this window reaches the client once. */
export const DEDUPE_MS = 1000;
/** How long the first acknowledgement waits for the other legs' before it goes out. */
const ACK_WAIT_MS = 2000;
/** How often the fan-in looks for replicas that joined or left. */
const TICK_MS = 500;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const HEARTBEAT = Buffer.from(': keep-alive\n\n');
const MAX_EVENT = 16 * 1024 * 1024;
const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged';
// Idempotent signals: a second copy within the window tells the client nothing new.
const IDEMPOTENT = /^notifications\/(?:(?:tools|prompts|resources)\/list_changed|resources\/updated)$/;

/** Is this exchange a listen to fan in? A multi-replica 2026-07-28 route's subscriptions/listen. */
export function fansIn(ex: DispatchedExchange): boolean {
  return ex.rpc?.method === 'subscriptions/listen' && ex.req.method === 'POST' && !ex.batch && sealsState(ex);
}

/** A non-stream answer a leg gave (an error, say): the client's answer if no leg streams. */
interface HeldAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  chunks: Buffer[];
}

class Leg implements UpstreamListener {
  readonly replica: Replica;
  acked = false;
  /** Ended with a result: the replica closed the subscription on purpose. */
  graceful = false;
  streaming = false;
  private readonly fan: ListenFanIn;
  private call: UpstreamCall | undefined;
  private transform: BodyTransform | undefined;
  private readonly framer = new SseFramer();
  private held: HeldAnswer | undefined;
  private done = false;
  private released = false;
  private headersTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(fan: ListenFanIn, replica: Replica) {
    this.fan = fan;
    this.replica = replica;
  }

  start(body: Buffer, headers: string[]): void {
    const ex = this.fan.ex;
    const t = ex.ctx.config.timeouts;
    this.replica.outstanding++;
    if (t.responseHeaders > 0) this.headersTimer = setTimeout(this.onHeadersTimeout, t.responseHeaders);
    this.call = ex.ctx.client.dispatch(
      {
        origin: this.replica.origin,
        policy: ex.route.policy,
        tls: ex.route.tls,
        path: upstreamTarget(this.replica, ex.routeRest, ex.query),
        method: 'POST',
        headers,
        body,
      },
      this,
    );
  }

  /** Stop the leg; the fan-in hears nothing more from it. */
  abort(reason: Error): void {
    if (this.done) return;
    this.finish();
    this.call?.abort(reason);
  }

  onHeaders(statusCode: number, headers: IncomingHttpHeaders): void {
    clearTimeout(this.headersTimer);
    const ex = this.fan.ex;
    const head = answerHead(statusCode, headers, this.replica);
    try {
      for (const stage of this.fan.stages) stage(ex, head);
    } catch (err) {
      return this.fail(err);
    }
    this.transform = chainOf(head.transforms);
    if (statusCode !== 200 || !head.sse) {
      this.held = { status: statusCode, headers: head.headers, chunks: [] };
      return;
    }
    this.streaming = true;
    const idle = ex.ctx.config.timeouts.streamIdle;
    if (idle > 0) this.idleTimer = setTimeout(this.onIdle, idle);
    this.fan.legStreams(this, head.headers);
  }

  onData(chunk: Buffer): void {
    if (this.done) return;
    this.idleTimer?.refresh();
    let out: Buffer = chunk;
    try {
      if (this.transform) out = this.transform.push(chunk);
    } catch (err) {
      return this.fail(err);
    }
    this.take(out);
  }

  onEnd(): void {
    if (this.done) return;
    let rest: Buffer | undefined;
    try {
      rest = this.transform?.end();
    } catch (err) {
      return this.fail(err);
    }
    if (rest) this.take(rest);
    if (this.done) return;
    this.finish();
    this.fan.legEnded(this, this.held);
  }

  onError(err: unknown): void {
    if (this.done) return;
    this.fail(err);
  }

  private take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.held) {
      this.held.chunks.push(bytes);
      return;
    }
    for (const block of this.framer.push(bytes)) {
      if (this.done) return;
      this.fan.legEvent(this, block);
    }
    if (this.framer.holding > MAX_EVENT) this.fail(new Error(`SSE event over ${MAX_EVENT} bytes`));
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.finish();
    this.call?.abort(err instanceof Error ? err : new Error(String(err)));
    this.fan.legFailed(this, err);
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.headersTimer);
    clearTimeout(this.idleTimer);
    if (!this.released) {
      this.released = true;
      this.replica.outstanding--;
    }
  }

  private readonly onHeadersTimeout = (): void => {
    this.fail(new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'no response headers in time'));
  };

  private readonly onIdle = (): void => {
    this.fail(new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'upstream-idle'));
  };
}

export class ListenFanIn implements Drainable {
  readonly kind = 'stream' as const;
  readonly ex: DispatchedExchange;
  readonly stages: readonly ResponseStage[];
  private readonly res: ServerResponse;
  private readonly legs = new Map<Replica, Leg>();
  /** When a replica whose leg failed may get a new one, and the next wait. */
  private readonly backoff = new Map<Replica, { until: number; wait: number }>();
  private readonly request: JsonObject;
  private readonly headers: string[];
  private headWritten = false;
  private ack: JsonObject | undefined;
  private ackSent = false;
  /** Notifications that arrived before the merged acknowledgement went out. */
  private early: string[] = [];
  private readonly recent = new Map<string, number>();
  private held: HeldAnswer | undefined;
  private finished = false;
  private ackTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly tickTimer: NodeJS.Timeout;

  constructor(ex: DispatchedExchange, stages: readonly ResponseStage[]) {
    this.ex = ex;
    this.stages = stages;
    this.res = ex.res;
    this.request = JSON.parse((ex.body as Buffer).toString('utf8')) as JsonObject;
    this.headers = upstreamRequestHeaders(ex);
    this.tickTimer = setInterval(this.tick, TICK_MS);
    this.tickTimer.unref();
  }

  start(): void {
    const { ex, res } = this;
    ex.ctx.active.add(this);
    res.once('close', this.onClientClose);
    const now = Date.now();
    const replicas = ex.route.pool.replicas.filter((r) => r.takesNew(now));
    // selectReplica found one even when none takes new work (panic routing): start there.
    if (!replicas.includes(ex.replica)) replicas.unshift(ex.replica);
    for (const r of replicas) this.openLeg(r);
  }

  stop(retryMs: number): void {
    this.end('shutdown', retryMs);
  }

  replicaGone(replica: Replica): void {
    this.dropLeg(replica, new SluiceError('SLUICE_ERR_SHUTTING_DOWN', 'replica drained'));
  }

  /** A leg's answer is a stream: the client's stream opens with the first. */
  legStreams(leg: Leg, headers: Record<string, string | string[]>): void {
    if (this.finished || this.headWritten) return;
    const { ex, res } = this;
    this.headWritten = true;
    ex.replica = leg.replica;
    delete headers['content-length'];
    res.writeHead(200, headers);
    ex.headersAt = performance.now();
    res.flushHeaders();
    observeStreamOpened(ex);
    const beat = ex.ctx.config.timeouts.heartbeat;
    if (beat > 0) this.heartbeatTimer = setInterval(this.onHeartbeat, beat);
  }

  /** One whole event from a leg (latin1, as the framer cut it). */
  legEvent(leg: Leg, block: string): void {
    if (this.finished) return;
    const data = eventData(block);
    if (data === undefined) return; // the upstream's keep-alive comments: Sluice writes its own
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      return this.legFailed(leg, new Error('a listen event that is not JSON'));
    }
    if (!isJsonObject(msg)) return;
    if (msg['method'] === ACKNOWLEDGED) return this.acknowledged(leg, msg);
    if ('id' in msg && !('method' in msg)) {
      // The replica ended the subscription with its result (graceful closure).
      leg.graceful = true;
      if (this.legs.size === 1 && this.legs.get(leg.replica) === leg) this.write(block);
      this.dropLeg(leg.replica, new SluiceError('SLUICE_ERR_UPSTREAM_UNAVAILABLE', 'listen closed'));
      return;
    }
    const method = msg['method'];
    if (typeof method === 'string' && IDEMPOTENT.test(method)) {
      const params = isJsonObject(msg['params']) ? { ...msg['params'] } : {};
      delete params['_meta'];
      const key = `${method}\0${JSON.stringify(params)}`;
      const now = performance.now();
      const seen = this.recent.get(key);
      if (seen !== undefined && now - seen < DEDUPE_MS) return;
      this.recent.set(key, now);
      if (this.recent.size > 1024) this.pruneRecent(now);
    }
    if (!this.ackSent) this.early.push(block);
    else this.write(block);
  }

  legEnded(leg: Leg, held: HeldAnswer | undefined): void {
    if (held && !this.headWritten && !this.held) this.held = held;
    if (!held && !leg.graceful) this.backOff(leg.replica);
    this.removeLeg(leg);
  }

  legFailed(leg: Leg, err: unknown): void {
    const ex = this.ex;
    if (!leg.streaming) replicaFailed(ex, leg.replica);
    ex.ctx.log.warn(
      { route: ex.route.path, replica: leg.replica.id, err: (err as Error).message },
      'listen fan-in: a replica left the stream',
    );
    leg.abort(err instanceof Error ? err : new Error(String(err)));
    this.backOff(leg.replica);
    this.removeLeg(leg);
  }

  private openLeg(replica: Replica): void {
    const leg = new Leg(this, replica);
    this.legs.set(replica, leg);
    leg.start(this.bodyFor(replica), this.headers);
  }

  /** The listen as `replica` gets it: task ids only its own, opened to the upstream's. */
  private bodyFor(replica: Replica): Buffer {
    const params = this.request['params'];
    const filter = isJsonObject(params) ? params['notifications'] : undefined;
    if (!isJsonObject(params) || !isJsonObject(filter) || !Array.isArray(filter['taskIds']))
      return this.ex.body as Buffer;
    const ex = this.ex;
    const principal = principalHash(ex);
    const own: string[] = [];
    for (const t of filter['taskIds']) {
      const c = typeof t === 'string' ? open(ex.ctx.sessions, 'task', t, principal) : undefined;
      if (c && c.route === ex.route.path && c.replica === replica.id) own.push(c.value);
    }
    const msg = { ...this.request, params: { ...params, notifications: { ...filter, taskIds: own } } };
    return Buffer.from(JSON.stringify(msg), 'utf8');
  }

  private acknowledged(leg: Leg, msg: JsonObject): void {
    leg.acked = true;
    this.backoff.delete(leg.replica);
    if (this.ackSent) return; // a leg that joined later: the client was acknowledged already
    this.ack = this.ack ? mergeAck(this.ack, msg) : msg;
    if ([...this.legs.values()].every((l) => l.acked)) this.sendAck();
    else this.ackTimer ??= setTimeout(this.sendAck, ACK_WAIT_MS);
  }

  private readonly sendAck = (): void => {
    clearTimeout(this.ackTimer);
    if (this.ackSent || this.finished || !this.ack) return;
    this.ackSent = true;
    this.write(`event: message\ndata: ${Buffer.from(JSON.stringify(this.ack), 'utf8').toString('latin1')}\n\n`);
    for (const block of this.early) this.write(block);
    this.early = [];
  };

  private write(block: string): void {
    if (this.finished || !this.headWritten) return;
    const { res, ex } = this;
    const bytes = Buffer.from(block, 'latin1');
    ex.bytesOut += bytes.length;
    res.write(bytes);
    this.heartbeatTimer?.refresh();
    if (res.writableLength > ex.ctx.config.limits.sseClientBuffer) {
      ex.ctx.log.warn({ route: ex.route.path, buffered: res.writableLength }, 'slow SSE client: stream closed');
      this.end('slow-client');
    }
  }

  private backOff(replica: Replica): void {
    const wait = Math.min(BACKOFF_MAX_MS, (this.backoff.get(replica)?.wait ?? BACKOFF_MIN_MS / 2) * 2);
    this.backoff.set(replica, { until: Date.now() + wait, wait });
  }

  private dropLeg(replica: Replica, reason: Error): void {
    const leg = this.legs.get(replica);
    if (!leg) return;
    leg.abort(reason);
    this.removeLeg(leg);
  }

  private removeLeg(leg: Leg): void {
    if (this.legs.get(leg.replica) !== leg) return;
    this.legs.delete(leg.replica);
    if (this.finished) return;
    if (this.legs.size > 0) {
      // The legs still waiting may be all the acknowledgement now waits for.
      if (!this.ackSent && this.ack && [...this.legs.values()].every((l) => l.acked)) this.sendAck();
      return;
    }
    if (!this.headWritten) {
      // No replica streamed: the client gets the answer one of them gave, or the failure.
      if (this.held) return this.relayHeld(this.held);
      return this.end('upstream-error');
    }
    this.end(leg.graceful ? 'ok' : 'upstream-error');
  }

  private relayHeld(held: HeldAnswer): void {
    this.finish();
    const { res, ex } = this;
    if (res.destroyed) return;
    res.writeHead(held.status, held.headers);
    ex.headersAt = performance.now();
    const body = Buffer.concat(held.chunks);
    ex.bytesOut += body.length;
    res.end(body);
  }

  /** Replicas that joined get a leg; legs whose replica was removed or drained away are dropped. */
  private readonly tick = (): void => {
    if (this.finished) return;
    const ex = this.ex;
    const route = ex.ctx.routes.find((r) => r.path === ex.route.path) ?? ex.route;
    const now = Date.now();
    for (const leg of [...this.legs.values()]) {
      const r = leg.replica;
      if (r.removed || (r.draining && now >= r.drainDeadline))
        this.dropLeg(r, new SluiceError('SLUICE_ERR_SHUTTING_DOWN', 'replica left the route'));
    }
    if (this.finished) return;
    for (const r of route.pool.replicas) {
      if (this.legs.has(r) || !r.takesNew(now) || (this.backoff.get(r)?.until ?? 0) > now) continue;
      this.openLeg(r);
    }
  };

  private pruneRecent(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= DEDUPE_MS) this.recent.delete(k);
  }

  /** Ends the client's stream: cleanly when Sluice or the replicas closed it, cut when they failed. */
  private end(outcome: Outcome, retryMs?: number): void {
    if (this.finished) return;
    this.finish();
    const reason = new SluiceError(
      outcome === 'shutdown' ? 'SLUICE_ERR_SHUTTING_DOWN' : 'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
      outcome,
    );
    for (const leg of this.legs.values()) leg.abort(reason);
    this.legs.clear();
    const { res, ex } = this;
    if (outcome !== 'ok') ex.outcome = outcome;
    if (!res.headersSent) {
      if (!res.destroyed) respondError(ex, reason);
    } else if (outcome === 'ok' || outcome === 'shutdown') {
      if (retryMs !== undefined) res.write(`retry: ${retryMs}\n\n`);
      res.end();
    } else {
      // Every replica's stream failed: a failure the client must see (it re-sends its listen).
      res.destroy();
    }
  }

  private finish(): void {
    this.finished = true;
    clearTimeout(this.ackTimer);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.tickTimer);
  }

  private readonly onClientClose = (): void => {
    this.ex.ctx.active.delete(this);
    if (this.finished) return;
    this.finish();
    if (this.ex.outcome === 'ok' && !this.res.writableFinished) this.ex.outcome = 'client-closed';
    const reason = new SluiceError('SLUICE_ERR_BAD_REQUEST', 'client closed the connection');
    for (const leg of this.legs.values()) leg.abort(reason);
    this.legs.clear();
  };

  private readonly onHeartbeat = (): void => {
    if (this.finished) return;
    this.res.write(HEARTBEAT);
    this.ex.bytesOut += HEARTBEAT.length;
    observeHeartbeat(this.ex);
  };
}

/** Two acknowledgements' filters as one: a notification type any leg agreed to, task ids of all. */
function mergeAck(a: JsonObject, b: JsonObject): JsonObject {
  const pa = isJsonObject(a['params']) ? a['params'] : {};
  const pb = isJsonObject(b['params']) ? b['params'] : {};
  const fa = isJsonObject(pa['notifications']) ? pa['notifications'] : {};
  const fb = isJsonObject(pb['notifications']) ? pb['notifications'] : {};
  const merged: JsonObject = { ...fa };
  for (const [k, v] of Object.entries(fb)) {
    const mine = merged[k];
    if (Array.isArray(v)) merged[k] = [...new Set([...(Array.isArray(mine) ? mine : []), ...v])];
    else if (typeof v === 'boolean') merged[k] = mine === true || v;
    else if (mine === undefined) merged[k] = v;
  }
  return { ...a, params: { ...pa, notifications: merged } };
}
