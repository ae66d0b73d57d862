// What the admin page shows live that Prometheus counters cannot give without a query engine:
// each route's requests and latency second by second over the last minute, the streams and
// sessions each replica holds now, and the most recent security refusals with their reasons.
// Fed by the same observation as the metrics (one call per exchange), bounded in size whatever
// the traffic: SECONDS buckets per route, REFUSALS entries, SESSIONS tracked.

export const SECONDS = 60;
const REFUSALS = 50;
const SESSIONS = 10_000;
/** A session counts as open on its replica while it was used within this long. */
const SESSION_ACTIVE_MS = 10 * 60_000;

export interface Refusal {
  /** ISO time. */
  at: string;
  route: string;
  /** The access log's security label (host-rejected, auth-failed, rate-limited, …). */
  reason: string;
  /** The error code answered (SLUICE_ERR_…). */
  code: string;
  status: number;
  method: string;
  rpcMethod: string | undefined;
  client: string;
}

interface Second {
  at: number;
  count: number;
  latencyMs: number;
  errors: number;
}

/** One point of a route's chart: requests in that second and their mean latency. */
export interface SeriesPoint {
  t: number;
  requests: number;
  meanMs: number | null;
  errors: number;
}

export class LiveView {
  private readonly seconds = new Map<string, Second[]>();
  private readonly refusals: Refusal[] = [];
  private readonly streams = new Map<string, number>();
  /** session hash → [replica key, last used]. Insertion order is recency order. */
  private readonly sessions = new Map<string, [string, number]>();

  /** One finished exchange of `route` (its total time, whether it failed). */
  exchange(route: string, totalMs: number, failed: boolean, now = Date.now()): void {
    const at = Math.floor(now / 1000);
    let list = this.seconds.get(route);
    if (!list) this.seconds.set(route, (list = []));
    let last = list[list.length - 1];
    if (!last || last.at !== at) {
      last = { at, count: 0, latencyMs: 0, errors: 0 };
      list.push(last);
      while (list.length > 0 && (list[0] as Second).at <= at - SECONDS) list.shift();
    }
    last.count++;
    last.latencyMs += totalMs;
    if (failed) last.errors++;
  }

  refused(r: Refusal): void {
    this.refusals.push(r);
    if (this.refusals.length > REFUSALS) this.refusals.shift();
  }

  streamOpened(replica: string): void {
    this.streams.set(replica, (this.streams.get(replica) ?? 0) + 1);
  }

  streamClosed(replica: string): void {
    const n = (this.streams.get(replica) ?? 1) - 1;
    if (n > 0) this.streams.set(replica, n);
    else this.streams.delete(replica);
  }

  sessionUsed(hash: string, replica: string, now = Date.now()): void {
    this.sessions.delete(hash);
    this.sessions.set(hash, [replica, now]);
    if (this.sessions.size > SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
  }

  sessionEnded(hash: string): void {
    this.sessions.delete(hash);
  }

  /** The last SECONDS seconds of `route`, one point per second (zeros where nothing happened). */
  series(route: string, now = Date.now()): SeriesPoint[] {
    const end = Math.floor(now / 1000);
    const byAt = new Map((this.seconds.get(route) ?? []).map((s) => [s.at, s]));
    const out: SeriesPoint[] = [];
    for (let t = end - SECONDS + 1; t <= end; t++) {
      const s = byAt.get(t);
      out.push({
        t,
        requests: s?.count ?? 0,
        meanMs: s && s.count ? Math.round((s.latencyMs / s.count) * 10) / 10 : null,
        errors: s?.errors ?? 0,
      });
    }
    return out;
  }

  recentRefusals(): Refusal[] {
    return [...this.refusals].reverse();
  }

  streamsOf(replica: string): number {
    return this.streams.get(replica) ?? 0;
  }

  /** Sessions used within the last ten minutes, by replica key. */
  sessionsByReplica(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const [hash, [replica, last]] of this.sessions) {
      if (now - last > SESSION_ACTIVE_MS) {
        this.sessions.delete(hash);
        continue;
      }
      out.set(replica, (out.get(replica) ?? 0) + 1);
    }
    return out;
  }
}
