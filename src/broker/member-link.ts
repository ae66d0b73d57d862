// One federated session's connection to one of its servers: an SDK v2 client speaking for the
// session's client (its info and capabilities), connected in the server's era. The link heals
// what a client of one server would see as the end of its session: an upstream that forgot the
// session (404: the request never ran) is initialized again and the request sent once more; a
// server that fails or is gone is marked down, its requests answer at once with an error naming
// it, and it is tried again in the background, its return announced so lists are asked anew.
import { LOG_LEVEL_META_KEY, ProtocolError, type Client } from '@modelcontextprotocol/client';
import type { Logger } from '../observability/logger.ts';
import { forwardCall, isSessionGone, legacyResult } from './bridge-common.ts';
import {
  connectUpstream,
  endUpstream,
  type CallerIdentity,
  type Discovery,
  type UpstreamEndpoint,
} from './upstream-link.ts';

export type LinkState = 'connecting' | 'up' | 'down' | 'closed';

/** What the link asks of its federated session: answers to the server's questions, and what it hears. */
export interface LinkEvents {
  request(method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<unknown>;
  notification(method: string, params: Record<string, unknown> | undefined): void;
  /** The server answers again after being down (its lists may differ from what the client last saw). */
  recovered(): void;
}

/** The server as every link to it reaches it: its era (found once) and an endpoint per connect. */
export interface LinkTarget {
  readonly name: string;
  discover(): Promise<Discovery>;
  endpoint(): UpstreamEndpoint;
}

export interface LinkTimes {
  connectTimeout: number;
  retryAfter: number;
  /** Notifications (progress aside) a second the server may send on this link before it is cut as unhealthy. */
  notificationRate: number;
}

const MAX_RETRY = 30_000;

export class MemberLink {
  state: LinkState = 'connecting';
  /** Why it is down, for the error its callers get and the admin API. */
  reason: string | undefined;
  private client: Client | undefined;
  /** A 2026-07-28 server's listen stream (its list changes). */
  private listening: { close(): Promise<void> } | undefined;
  private modern = false;
  private found: Discovery | undefined;
  /** Resource URIs the session subscribed to on a 2026-07-28 server (they ride its listen). */
  private readonly uris = new Set<string>();
  private connecting: Promise<Client> | undefined;
  /** The level the client's logging/setLevel asked for: a 2026-07-28 server gets it in each request's _meta. */
  private logLevel: string | undefined;
  /** Notifications heard in the current second (the rate bound). */
  private heard = { second: 0, count: 0 };
  private retryTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private readonly target: LinkTarget;
  private readonly who: () => CallerIdentity;
  private readonly events: LinkEvents;
  private readonly times: LinkTimes;
  private readonly log: Logger;

  constructor(target: LinkTarget, who: () => CallerIdentity, events: LinkEvents, times: LinkTimes, log: Logger) {
    this.target = target;
    this.who = who;
    this.events = events;
    this.times = times;
    this.backoff = times.retryAfter;
    this.log = log;
  }

  get name(): string {
    return this.target.name;
  }

  /** Whether the server's list changes reach this link now (a list of it may be kept until one does). */
  get hearsChanges(): boolean {
    return this.state === 'up' && (!this.modern || this.listening !== undefined);
  }

  /** The connected client, connecting (once at a time) when there is none. */
  ready(): Promise<Client> {
    if (this.state === 'closed') return Promise.reject(this.unavailable('the session ended'));
    if (this.client) return Promise.resolve(this.client);
    return (this.connecting ??= this.connect().finally(() => (this.connecting = undefined)));
  }

  private async connect(): Promise<Client> {
    try {
      const found = await this.target.discover();
      // The transport may close before connect returns: `closed` then finds nothing to drop.
      const made: { client?: Client } = {};
      const client = await connectUpstream(
        this.target.endpoint(),
        found,
        this.who(),
        {
          request: (method, params, signal) => this.events.request(method, params, signal),
          notification: (method, params) => {
            if (made.client && !this.withinRate(made.client, method)) return;
            this.events.notification(method, params);
          },
          closed: () => made.client && this.lost(made.client, 'the connection closed'),
        },
        { signal: AbortSignal.timeout(this.times.connectTimeout) },
      );
      made.client = client;
      if (this.state === 'closed') {
        void client.close().catch(() => undefined);
        throw this.unavailable('the session ended');
      }
      const wasDown = this.state === 'down';
      this.client = client;
      this.modern = found.era === 'modern';
      this.found = found;
      if (this.modern) void this.listen(client, found);
      this.state = 'up';
      this.reason = undefined;
      this.backoff = this.times.retryAfter;
      if (wasDown) {
        this.log.info({ server: this.name }, 'federated server is back');
        this.events.recovered();
      }
      return client;
    } catch (err) {
      throw this.down(`could not connect: ${(err as Error).message}`);
    }
  }

  /**
   * One request to the server. A session it forgot is initialized again and the request sent once
   * more (it never ran there); a server that fails is marked down and the caller gets an error naming it.
   */
  async request(
    method: string,
    params: Record<string, unknown> | undefined,
    opts: { signal: AbortSignal; onprogress?: ((p: Record<string, unknown>) => void) | undefined },
  ): Promise<unknown> {
    if (this.modern && (method === 'resources/subscribe' || method === 'resources/unsubscribe'))
      return this.subscription(method, params);
    // 2026-07-28 has no logging/setLevel: the level rides each request's _meta instead.
    if (this.modern && method === 'logging/setLevel') {
      const level = params?.['level'];
      if (typeof level !== 'string') throw new ProtocolError(-32602, 'params.level is required');
      this.logLevel = level;
      return {};
    }
    for (let attempt = 0; ; attempt++) {
      const client = await this.ready();
      try {
        // A 2026-07-28 server's tool calls go through the SDK's callTool, which mirrors the
        // arguments its tools' x-mcp-header annotations name into Mcp-Param-* headers.
        if (!this.modern) return await forwardCall(client, { method, ...(params ? { params } : {}) }, opts);
        // A 2025 client that never set a level hears every log message (the SDKs' default): a
        // 2026-07-28 server is asked for all of them unless the client chose a level.
        const meta = { ...((params?.['_meta'] as Record<string, unknown> | undefined) ?? {}) };
        meta[LOG_LEVEL_META_KEY] = this.logLevel ?? 'debug';
        const result = await forwardCall(
          client,
          { method, params: { ...(params ?? {}), _meta: meta } },
          { ...opts, typedCall: true },
        );
        return legacyResult(result);
      } catch (err) {
        if (opts.signal.aborted) throw err;
        if (isSessionGone(err) && attempt === 0) {
          this.log.info({ server: this.name, method }, 'federated server forgot the session: initializing again');
          this.drop(client);
          continue;
        }
        // The server answered: its error is the caller's, as a client of it alone would get it.
        if (err instanceof ProtocolError && !isSessionGone(err)) throw err;
        this.drop(client);
        throw this.down(isSessionGone(err) ? 'it forgot the new session too' : (err as Error).message);
      }
    }
  }

  /**
   * A 2026-07-28 server tells of its list changes only on a `subscriptions/listen` stream: one is
   * kept open while the connection lives, its notifications heard like any other.
   */
  private listen(client: Client, found: Discovery): Promise<void> {
    const caps = found.capabilities as Record<string, { listChanged?: boolean } | undefined>;
    const filter = {
      ...(caps['tools']?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps['prompts']?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps['resources']?.listChanged ? { resourcesListChanged: true } : {}),
      // 2026-07-28 has no resources/subscribe: the session's subscriptions ride this stream.
      ...(this.uris.size > 0 ? { resourceSubscriptions: [...this.uris] } : {}),
    };
    const old = this.listening;
    this.listening = undefined;
    void old?.close().catch(() => undefined);
    if (Object.keys(filter).length === 0) return Promise.resolve();
    return client.listen(filter).then(
      (sub) => {
        if (this.client === client && !this.listening) this.listening = sub;
        else void sub.close().catch(() => undefined);
      },
      (err: Error) => this.log.info({ server: this.name, err: err.message }, 'federated server: no listen stream'),
    );
  }

  /** A 2026-07-28 server's resources/subscribe and unsubscribe: the listen stream opened again with the URIs. */
  private async subscription(method: string, params: Record<string, unknown> | undefined): Promise<unknown> {
    const uri = params?.['uri'];
    if (typeof uri !== 'string') throw new ProtocolError(-32602, 'params.uri is required');
    if (method === 'resources/subscribe') this.uris.add(uri);
    else this.uris.delete(uri);
    const client = await this.ready();
    if (this.found) await this.listen(client, this.found);
    return {};
  }

  /**
   * A server that floods the link (a list_changed storm) is cut like a failing one: marked down,
   * named in the log, and tried again later, so its storm costs a bounded amount of work.
   */
  private withinRate(client: Client, method: string): boolean {
    if (method === 'notifications/progress') return true;
    const second = Math.floor(Date.now() / 1000);
    if (this.heard.second !== second) this.heard = { second, count: 0 };
    if (++this.heard.count <= this.times.notificationRate) return true;
    if (this.client === client) {
      this.drop(client);
      this.down(
        `it sent more than ${this.times.notificationRate} notifications in a second (federation.notificationRate): cut as unhealthy`,
      );
    }
    return false;
  }

  /** The server gone from under an open connection (a stdio child exited, a stream ended for good). */
  private lost(client: Client, why: string): void {
    if (this.client !== client || this.state === 'closed') return;
    this.drop(client);
    this.down(why);
  }

  private drop(client: Client): void {
    if (this.client === client) {
      this.client = undefined;
      void this.listening?.close().catch(() => undefined);
      this.listening = undefined;
    }
    void client.close().catch(() => undefined);
  }

  /** Mark the server down and try it again later; returns the error its callers get. */
  private down(why: string): ProtocolError {
    if (this.state !== 'closed') {
      if (this.state !== 'down') this.log.warn({ server: this.name, err: why }, 'federated server unavailable');
      this.state = 'down';
      this.reason = why;
      this.scheduleRetry();
    }
    return this.unavailable(why);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.state === 'closed') return;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_RETRY);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === 'down' && !this.client) void this.ready().catch(() => undefined);
    }, wait);
    this.retryTimer.unref();
  }

  private unavailable(why: string): ProtocolError {
    return new ProtocolError(-32603, `federated server "${this.name}" is unavailable: ${why}`, {
      server: this.name,
    });
  }

  close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    void this.listening?.close().catch(() => undefined);
    this.listening = undefined;
    const c = this.client;
    this.client = undefined;
    return c ? endUpstream(c) : Promise.resolve();
  }
}
