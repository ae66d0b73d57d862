// Upstream 2025-era sessions that stateless (2026-07-28) callers are served on. A session belongs
// to one pool key, the caller's principal plus the client info and capabilities its requests'
// `_meta` declare, and is never lent across keys, so two principals never share upstream state.
// A call that may make the upstream ask the caller something (tools/call, prompts/get,
// resources/read, completion/complete) takes a session for itself while it runs, so each upstream
// request lands on exactly the call it belongs to; other requests share. Bounded per key and in
// all; idle sessions are closed; a session the upstream forgot (404) is replaced.
import type { Client } from '@modelcontextprotocol/client';
import { ProtocolError } from '@modelcontextprotocol/server';
import { endUpstream } from './upstream-link.ts';

/** How long an idle disposable session lingers before it is closed (its last messages flushed). */
const DISPOSE_GRACE_MS = 500;

export interface PooledSession {
  readonly key: string;
  readonly client: Client;
  /** Calls holding it for themselves, and requests sharing it. */
  exclusive: number;
  shared: number;
  lastUsed: number;
  /** Set while a call holds it: where the upstream's requests and notifications for that call go. */
  owner: SessionOwner | undefined;
  closed: boolean;
}

export interface SessionOwner {
  ask(method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<unknown>;
  hear(method: string, params: Record<string, unknown> | undefined): void;
}

export interface PoolLimits {
  /** Sessions per key (principal + client identity). */
  perCaller: number;
  /** Sessions in all. */
  total: number;
  /** A session with nothing in flight is closed after this long (ms). */
  idleMs: number;
  /** Keys whose sessions serve one lease and are then closed (an anonymous caller's: never lent again). */
  disposable?: (key: string) => boolean;
}

/** Opens a new session for `key`; `how` is what the lease that needs it passed (the caller's identity and endpoint). */
export type Opener<H> = (key: string, session: PooledSession, how: H) => Promise<Client>;

/** Frees a session held by a call waiting on its caller (true: one was freed and has closed). */
export type Reclaimer = () => Promise<boolean>;

export class SessionPool<H> {
  /** Set by the owner: gives back a session an abandoned input_required round holds. */
  reclaim: Reclaimer | undefined;
  /** Told the number of sessions whenever it changes, down as well as up (the bridge's gauge). */
  counted: ((n: number) => void) | undefined;
  private readonly byKey = new Map<string, PooledSession[]>();
  private readonly opening = new Map<string, number>();
  private readonly limits: PoolLimits;
  private readonly open: Opener<H>;
  private count = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(limits: PoolLimits, open: Opener<H>) {
    this.limits = limits;
    this.open = open;
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(limits.idleMs / 4, 10_000)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.count;
  }

  /**
   * A session of `key`: for `exclusive` one no other call holds (a new one when all are held and
   * the key has room; when it has none, the least busy, shared), otherwise the least busy.
   */
  async lease(key: string, exclusive: boolean, how: H): Promise<PooledSession> {
    const list = this.byKey.get(key) ?? [];
    const live = list.filter((s) => !s.closed);
    const free = live.find((s) => s.exclusive === 0 && (!exclusive || s.shared === 0));
    const roomy = live.length + (this.opening.get(key) ?? 0) < this.limits.perCaller;
    let s = free;
    if (!s && (roomy || live.length === 0)) s = await this.create(key, how);
    if (!s) s = live.reduce((a, b) => (a.exclusive + a.shared <= b.exclusive + b.shared ? a : b));
    if (exclusive) s.exclusive++;
    else s.shared++;
    s.lastUsed = Date.now();
    return s;
  }

  release(s: PooledSession, exclusive: boolean): void {
    if (exclusive) s.exclusive = Math.max(0, s.exclusive - 1);
    else s.shared = Math.max(0, s.shared - 1);
    if (exclusive && s.exclusive === 0) s.owner = undefined;
    s.lastUsed = Date.now();
    // A disposable session is closed once idle, a moment later: a cancellation the SDK client is
    // still sending for its call (notifications/cancelled) gets out before the session goes.
    if (s.exclusive + s.shared === 0 && this.limits.disposable?.(s.key))
      setTimeout(() => s.exclusive + s.shared === 0 && this.discard(s), DISPOSE_GRACE_MS).unref();
  }

  /** The upstream no longer knows the session (404): it is dropped; the next lease makes a new one. */
  discard(s: PooledSession): void {
    if (s.closed) return;
    s.closed = true;
    // Still opening (its connect failed): it was never counted or listed.
    if (!(s.client as Client | undefined)) return;
    this.count--;
    this.counted?.(this.count);
    const list = this.byKey.get(s.key);
    if (list) {
      const rest = list.filter((x) => x !== s);
      if (rest.length) this.byKey.set(s.key, rest);
      else this.byKey.delete(s.key);
    }
    this.stop(s.client);
  }

  /** Closes a client; a stdio child's exit is awaited at shutdown (nothing is left behind unreaped). */
  private stop(client: Client | undefined): void {
    // A session whose connect failed has no client yet: nothing to close.
    if (!client) return;
    const gone = (client.transport as { gone?: Promise<void> } | undefined)?.gone;
    const ended = endUpstream(client);
    this.stopping.add(ended);
    void ended.then(() => this.stopping.delete(ended));
    if (gone) {
      this.stopping.add(gone);
      void gone.then(() => this.stopping.delete(gone));
    }
  }

  private readonly stopping = new Set<Promise<void>>();

  /** Discards `s` and resolves once its transport is gone (a stdio child reaped: its process slot free). */
  async discardAndWait(s: PooledSession): Promise<void> {
    const gone = (s.client as Client | undefined)?.transport as { gone?: Promise<void> } | undefined;
    this.discard(s);
    await gone?.gone;
  }

  /** Every session of `key` (notifications fan out to them; listen subscribes on one). */
  sessionsOf(key: string): readonly PooledSession[] {
    return this.byKey.get(key) ?? [];
  }

  private async create(key: string, how: H): Promise<PooledSession> {
    if (this.count + this.openingTotal() >= this.limits.total) this.evictIdle();
    // Every session in use: one held past its hold by a call its caller abandoned is taken back.
    while (this.count + this.openingTotal() >= this.limits.total && this.reclaim && (await this.reclaim()));
    if (this.count + this.openingTotal() >= this.limits.total)
      throw new ProtocolError(
        -32603,
        `Sluice holds ${this.limits.total} bridged upstream sessions, all in use (bridge.maxSessions); try again`,
      );
    this.opening.set(key, (this.opening.get(key) ?? 0) + 1);
    const s: PooledSession = {
      key,
      client: undefined as unknown as Client,
      exclusive: 0,
      shared: 0,
      lastUsed: Date.now(),
      owner: undefined,
      closed: false,
    };
    try {
      (s as { client: Client }).client = await this.open(key, s, how);
    } finally {
      const n = (this.opening.get(key) ?? 1) - 1;
      if (n > 0) this.opening.set(key, n);
      else this.opening.delete(key);
    }
    this.count++;
    this.counted?.(this.count);
    const list = this.byKey.get(key);
    if (list) list.push(s);
    else this.byKey.set(key, [s]);
    return s;
  }

  private openingTotal(): number {
    let n = 0;
    for (const v of this.opening.values()) n += v;
    return n;
  }

  private evictIdle(): void {
    let oldest: PooledSession | undefined;
    for (const list of this.byKey.values())
      for (const s of list) if (s.exclusive + s.shared === 0 && (!oldest || s.lastUsed < oldest.lastUsed)) oldest = s;
    if (oldest) this.discard(oldest);
  }

  private sweep(): void {
    const now = Date.now();
    for (const list of [...this.byKey.values()])
      for (const s of list) if (s.exclusive + s.shared === 0 && now - s.lastUsed >= this.limits.idleMs) this.discard(s);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.byKey.values()].flat();
    this.byKey.clear();
    this.count = 0;
    this.counted?.(0);
    for (const s of all) {
      s.closed = true;
      this.stop(s.client);
    }
    await Promise.all([...this.stopping]);
  }
}
