// Token buckets in memory, keyed by whatever the caller names (route, principal, tool). Each
// bucket is two numbers; buckets that have refilled to full are dropped when the map grows, so
// a stream of distinct keys (addresses, forged principals) cannot grow memory without bound.

export interface BucketSpec {
  /** Most tokens a bucket holds (the burst). */
  capacity: number;
  /** Tokens added per millisecond. */
  perMs: number;
}

/** Takes one token from a bucket; resolves to 0 when granted, else the wait in ms until one is due. */
export interface BucketStore {
  take(key: string, spec: BucketSpec): Promise<number> | number;
  close?(): Promise<void>;
}

const SWEEP_AT = 100_000;

export class MemoryBuckets implements BucketStore {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  take(key: string, spec: BucketSpec, now = Date.now()): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(now, spec);
      b = { tokens: spec.capacity, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(spec.capacity, b.tokens + (now - b.at) * spec.perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / spec.perMs);
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Drop buckets that are full again (they hold no information); if none are, the oldest half. */
  private sweep(now: number, spec: BucketSpec): void {
    for (const [k, b] of this.buckets)
      if (b.tokens + (now - b.at) * spec.perMs >= spec.capacity) this.buckets.delete(k);
    if (this.buckets.size < SWEEP_AT) return;
    let n = this.buckets.size / 2;
    for (const k of this.buckets.keys()) {
      if (n-- <= 0) break;
      this.buckets.delete(k);
    }
  }
}
