// Token buckets in Redis, so every Sluice process sharing it enforces one limit. One Lua script
// per take: refill by Redis's own clock (processes' clocks may differ), take or say how long to
// wait, and expire the key once it would be full again.
import { Redis } from 'ioredis';
import type { BucketSpec, BucketStore } from '../security/token-bucket.ts';

const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil then tokens = capacity; at = now end
tokens = math.min(capacity, tokens + math.max(0, now - at) * perMs)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / perMs) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / perMs) + 1000)
return wait
`;

export class RedisBuckets implements BucketStore {
  private readonly redis: Redis & { sluiceTake(key: string, capacity: number, perMs: string): Promise<number> };
  private readonly prefix: string;
  private readonly timeoutMs: number;

  constructor(url: string, prefix: string, timeoutMs: number, onError: (err: Error) => void) {
    // No offline queue: while Redis is away a take fails at once (and the caller decides),
    // instead of requests piling up behind a reconnect.
    const redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: false,
      retryStrategy: (n) => Math.min(n * 200, 2_000),
    });
    redis.on('error', onError);
    redis.defineCommand('sluiceTake', { numberOfKeys: 1, lua: TAKE });
    this.redis = redis as typeof this.redis;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
  }

  /** Resolves when connected, or after `ms` (a Redis still away then is the fail-open case, not a start failure). */
  async ready(ms: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.redis.once('ready', onReady);
    });
  }

  take(key: string, spec: BucketSpec): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([
      this.redis.sluiceTake(this.prefix + key, spec.capacity, spec.perMs.toPrecision(17)),
      timeout,
    ]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
