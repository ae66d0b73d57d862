// The replicas of one route and what Sluice knows about each: active health, passive ejection,
// draining, requests in flight. New sessions and stateless requests are balanced over the
// replicas that take new work; a session's later requests go to its owner for as long as the
// owner may serve it, and otherwise get 404 so the client starts a new session.
import type { RouteConfig } from '../config/schema.ts';

export type Balance = RouteConfig['balance'];

export class Replica {
  readonly id: string;
  readonly url: URL;
  /** e.g. http://127.0.0.1:3000 */
  readonly origin: string;
  /** Base path without trailing slash ('' for the root). */
  readonly basePath: string;
  /** Requests and streams in flight. */
  outstanding = 0;
  /** Active health: false after `unhealthyThreshold` failed checks. Replicas start healthy. */
  healthy = true;
  checkFailures = 0;
  checkPasses = 0;
  /** Passive: consecutive failed exchanges, and the time (ms epoch) an ejection ends. */
  failures = 0;
  ejectedUntil = 0;
  draining = false;
  /** When draining: the time (ms epoch) after which its sessions end. */
  drainDeadline = 0;
  /** Taken out of the config by a reload. */
  removed = false;

  constructor(id: string, url: string) {
    this.id = id;
    this.url = new URL(url);
    this.origin = this.url.origin;
    this.basePath = this.url.pathname.endsWith('/') ? this.url.pathname.slice(0, -1) : this.url.pathname;
  }

  /** May serve requests at all (existing sessions included). */
  serves(now: number): boolean {
    return !this.removed && this.healthy && now >= this.ejectedUntil && (!this.draining || now < this.drainDeadline);
  }

  /** May be given new sessions and stateless requests. */
  takesNew(now: number): boolean {
    return !this.draining && this.serves(now);
  }

  /** What the access log and status output call its state. */
  state(now: number): 'up' | 'down' | 'ejected' | 'draining' | 'removed' {
    if (this.removed) return 'removed';
    if (!this.healthy) return 'down';
    if (now < this.ejectedUntil) return 'ejected';
    return this.draining ? 'draining' : 'up';
  }
}

export class ReplicaPool {
  readonly replicas: readonly Replica[];
  private readonly byId: Map<string, Replica>;
  private readonly balance: Balance;
  private readonly ejectAfter: number;
  private readonly ejectFor: number;
  private cursor = 0;

  constructor(
    route: Pick<RouteConfig, 'upstream' | 'balance' | 'ejection' | 'drainTimeout'>,
    previous?: ReplicaPool,
    now = Date.now(),
  ) {
    this.balance = route.balance;
    this.ejectAfter = route.ejection.consecutiveFailures;
    this.ejectFor = route.ejection.duration;
    // A reload keeps what is known about replicas that stay (health, load, drain deadline).
    this.replicas = route.upstream.map((u) => {
      const old = previous?.find(u.id);
      const r = old && old.url.href === new URL(u.url).href ? old : new Replica(u.id, u.url);
      if (u.draining && !r.draining) r.drainDeadline = now + route.drainTimeout;
      r.draining = u.draining;
      r.removed = false;
      return r;
    });
    this.byId = new Map(this.replicas.map((r) => [r.id, r]));
    if (previous) for (const r of previous.replicas) if (this.byId.get(r.id) !== r) r.removed = true;
  }

  find(id: string): Replica | undefined {
    return this.byId.get(id);
  }

  /** The replica for a new session or a stateless request; undefined when none takes new work. */
  pick(now = Date.now(), exclude?: readonly Replica[]): Replica | undefined {
    const list = this.replicas;
    const n = list.length;
    if (n === 1) {
      const only = list[0] as Replica;
      return only.takesNew(now) && !exclude?.includes(only) ? only : undefined;
    }
    let best: Replica | undefined;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const r = list[i] as Replica;
      if (!r.takesNew(now) || exclude?.includes(r)) continue;
      if (this.balance === 'round-robin') {
        best = r;
        bestIndex = i;
        break;
      }
      // least-outstanding: fewest in flight; ties go to the one the rotation reaches first.
      if (!best || r.outstanding < best.outstanding) {
        best = r;
        bestIndex = i;
      }
    }
    if (best) this.cursor = (bestIndex + 1) % n;
    return best;
  }

  /**
   * The session's owner, if its sessions may still be served; undefined means the session is over
   * (404). Passive ejection does not end sessions: it only keeps new work away, and the owner is
   * still the one place the session lives. A replica that active checks call down ends its
   * sessions only when another replica could take the client's new session; the only replica
   * keeps them (its requests get 503 until it is back: a restart must not cost every session).
   */
  owner(id: string, now = Date.now()): Replica | undefined {
    const r = this.byId.get(id);
    if (!r || r.removed || (r.draining && now >= r.drainDeadline)) return undefined;
    if (!r.healthy && this.hasAlternative(r, now)) return undefined;
    return r;
  }

  /**
   * When no replica takes new work: one that is only marked down or ejected (not removed, not
   * draining), in rotation. Health checks and ejection are guesses about the replica, and a route
   * with nothing left is better served by trying (a refused connect answers 502 at once; a
   * replica that is back answers at once) than by a 503 until the next check (Envoy's panic
   * routing, nginx's "all failed, try all").
   */
  pickAnyway(exclude?: readonly Replica[]): Replica | undefined {
    const list = this.replicas;
    const n = list.length;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const r = list[i] as Replica;
      if (r.removed || r.draining || exclude?.includes(r)) continue;
      this.cursor = (i + 1) % n;
      return r;
    }
    return undefined;
  }

  /** Some other replica takes new work now: a client told to start over has somewhere to go. */
  hasAlternative(r: Replica, now = Date.now()): boolean {
    for (const other of this.replicas) if (other !== r && other.takesNew(now)) return true;
    return false;
  }

  /** Seconds until some replica may take work again: the Retry-After of a 503. */
  retryAfter(now = Date.now(), checkInterval = 0): number {
    let soonest = Infinity;
    for (const r of this.replicas) {
      if (r.removed || r.draining) continue;
      if (!r.healthy) soonest = Math.min(soonest, checkInterval || 10_000);
      else if (now < r.ejectedUntil) soonest = Math.min(soonest, r.ejectedUntil - now);
    }
    return Number.isFinite(soonest) ? Math.max(1, Math.ceil(soonest / 1000)) : 10;
  }

  /** Passive health: an exchange reached the replica and was answered. */
  succeeded(r: Replica): void {
    r.failures = 0;
  }

  /**
   * Passive health: a connect failure or timeout (and a 5xx where the route opts in). Returns true
   * when this ejected it. The last replica that takes new work is never ejected (as nginx ignores
   * max_fails for a lone server): ejecting it turns one bad upstream moment into a route outage
   * that outlasts the upstream's recovery.
   */
  failed(r: Replica, now = Date.now()): boolean {
    r.failures++;
    if (this.ejectAfter === 0 || r.failures < this.ejectAfter || now < r.ejectedUntil) return false;
    if (!this.hasAlternative(r, now)) return false;
    r.failures = 0;
    r.ejectedUntil = now + this.ejectFor;
    return true;
  }
}
