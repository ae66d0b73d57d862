// A 2025-era upstream asks its caller things in the middle of a call (sampling, elicitation,
// roots/list, as server-to-client requests); a 2026-07-28 caller is asked by an `input_required`
// result and answers by calling again with `inputResponses`. A parked call is the bridge between
// the two: the upstream call keeps running on its own session while the caller is away; each of
// the caller's rounds either gets the call's result or the questions asked since the last round.
// Bounded in number and in how long a caller may take to come back; a caller who never does has
// the upstream call cancelled (notifications/cancelled) and the upstream's questions answered with
// an error.
import { randomUUID } from 'node:crypto';
import type { ServerContext } from '@modelcontextprotocol/server';
import { isAnonymous } from './bridge-common.ts';
import type { PooledSession } from './session-pool.ts';

export interface Ask {
  readonly key: string;
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
  answer(value: unknown): void;
  fail(err: Error): void;
}

/** What a round of the caller gets: the call's end, or questions to answer first. */
export type Round =
  { kind: 'done'; result: unknown } | { kind: 'failed'; error: unknown } | { kind: 'asks'; asks: Ask[] };

export class ParkedCall {
  readonly id = randomUUID();
  readonly principal: string;
  /** Aborting it cancels the upstream call. */
  readonly abort = new AbortController();
  private readonly asked = new Map<string, Ask>();
  private fresh: Ask[] = [];
  private outcome: Round | undefined;
  private wake: (() => void) | undefined;
  private n = 0;
  expires = 0;
  /** When its current wait for the caller began (Parking.keep). */
  parkedAt = 0;
  /** The upstream session the call runs on (given back to other callers if it waits too long). */
  session: PooledSession | undefined;
  /** Told when a round of the caller starts (its context) and ends (undefined). */
  onRound: ((ctx: ServerContext | undefined) => void) | undefined;
  /** Resolves once every progress notification heard so far is written (the result must follow them). */
  progressSent: () => Promise<unknown> = () => Promise.resolve();

  /** The caller's request, as its first round sent it. */
  readonly request: { method: string; params?: Record<string, unknown> };

  constructor(principal: string, request: { method: string; params?: Record<string, unknown> }) {
    this.principal = principal;
    this.request = request;
  }

  get settled(): boolean {
    return this.outcome !== undefined;
  }

  /** The upstream call, running: its end is the last round. */
  run(call: Promise<unknown>): void {
    call.then(
      (result) => this.settle({ kind: 'done', result }),
      (error: unknown) => this.settle({ kind: 'failed', error }),
    );
  }

  /** The upstream asks: the promise resolves with the caller's answer, from a later round. */
  ask(method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const key = `${method.replace(/[^a-z]/gi, '_')}_${++this.n}`;
      const a: Ask = {
        key,
        method,
        params,
        answer: (v) => (this.asked.delete(key), resolve(v)),
        fail: (e) => (this.asked.delete(key), reject(e)),
      };
      signal.addEventListener('abort', () => a.fail(new Error('the upstream withdrew its request')), { once: true });
      this.asked.set(key, a);
      this.fresh.push(a);
      this.wake?.();
    });
  }

  /** The caller's answers, by the keys its round was given; returns the keys it left unanswered. */
  answer(responses: Record<string, unknown> | undefined): string[] {
    for (const [k, v] of Object.entries(responses ?? {})) this.asked.get(k)?.answer(v);
    // What the retry left unanswered is asked again at once (its round must not wait on the call).
    if (this.asked.size > 0) this.fresh = [...this.asked.values()];
    return [...this.asked.keys()];
  }

  /** Asks still waiting for an answer (a retry that left some out is asked them again). */
  pending(): Ask[] {
    return [...this.asked.values()];
  }

  /** The next round: the call's end, or the questions asked since the last one. */
  async next(signal: AbortSignal): Promise<Round> {
    for (;;) {
      if (this.fresh.length) {
        const asks = this.fresh;
        this.fresh = [];
        // Questions asked together travel together: let the rest of this tick's arrive.
        await new Promise((r) => setImmediate(r));
        asks.push(...this.fresh.splice(0));
        return { kind: 'asks', asks };
      }
      if (this.outcome) return this.outcome;
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.wake = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** The caller is gone for good: the upstream call is cancelled and its questions refused. */
  cancel(reason: string): void {
    const err = new Error(reason);
    for (const a of [...this.asked.values()]) a.fail(err);
    this.fresh = [];
    this.abort.abort(err);
    this.settle({ kind: 'failed', error: err });
  }

  private settle(r: Round): void {
    if (this.outcome) return;
    this.outcome = r;
    this.wake?.();
  }
}

/** The parked calls of one bridge: found again by id, bounded, expired when their caller does not return. */
export class Parking {
  private readonly calls = new Map<string, ParkedCall>();
  private readonly max: number;
  private readonly waitMs: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(max: number, waitMs: number) {
    this.max = max;
    this.waitMs = waitMs;
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(waitMs / 4, 5000)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.calls.size;
  }

  get full(): boolean {
    return this.calls.size >= this.max;
  }

  /** Keep `call` for its caller's next round (the clock restarts each round). */
  keep(call: ParkedCall): void {
    call.parkedAt = Date.now();
    call.expires = call.parkedAt + this.waitMs;
    this.calls.set(call.id, call);
  }

  /**
   * The call that has waited longest for its caller, if it has waited at least `holdMs`: taken out
   * of the parking and cancelled, so its session can serve another caller (undefined: none yet).
   */
  reclaim(holdMs: number): ParkedCall | undefined {
    const now = Date.now();
    let oldest: ParkedCall | undefined;
    for (const c of this.calls.values())
      if (now - c.parkedAt >= holdMs && (!oldest || c.parkedAt < oldest.parkedAt)) oldest = c;
    if (!oldest) return undefined;
    this.calls.delete(oldest.id);
    oldest.cancel(`another caller needed its upstream session after ${holdMs} ms waiting (bridge.inputHold)`);
    return oldest;
  }

  /**
   * The call `id` for its own principal's next round (another principal's retry leaves it parked).
   * An anonymous call (key `anon:…`, new each request) is taken by any anonymous caller holding its
   * sealed id: the requestState is its only owner.
   */
  take(id: string, principal: string): ParkedCall | undefined {
    const c = this.calls.get(id);
    if (!c || (isAnonymous(c.principal) ? !isAnonymous(principal) : c.principal !== principal)) return undefined;
    this.calls.delete(id);
    return c;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, c] of this.calls)
      if (now >= c.expires) {
        this.calls.delete(id);
        c.cancel(`the caller did not answer within ${this.waitMs} ms (bridge.inputTimeout)`);
      }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const c of this.calls.values()) c.cancel('Sluice is stopping');
    this.calls.clear();
  }
}
