// A stdio route's broker: the sessions of one route, each with its child, and the HTTP exchanges
// the pipeline hands it once the shared front stages (head, route, Host/Origin, CORS, auth, body,
// classification, policy) have passed. Its 2025-era client sessions are kept by the one keeper of
// client sessions (client-sessions.ts: tokens, owner rule, bound, idle sweep, 400/404); what is
// stdio's own is here: a new session spawns a child within the route's process count
// (process-slots.ts), a request reaches the child when it reads (stdin backpressure) and ends at
// its deadline, and a session that ends (DELETE, idle, its child exiting, shutdown, the route
// reloaded away) stops its child's process group, so its next request gets 404 and the client
// starts again. 2026-07-28 clients are bridged onto pooled sessions (modern-front.ts).
import type { RequestId } from '@modelcontextprotocol/server';
import type { RouteConfig, StdioConfig } from '../config/schema.ts';
import type { BridgingConfig } from '../config/schema.ts';
import type { BrokerCloseReason, BrokerState, RouteBroker } from '../core/route-broker.ts';
import { SluiceError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Route } from '../routing/route-table.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { callerKey, type BridgeMetrics } from './bridge-common.ts';
import { ClientSessions, type SessionEndCause } from './client-sessions.ts';
import { ModernFront } from './modern-front.ts';
import { perCallerShare, ProcessSlots } from './process-slots.ts';
import { StdioSession, type SessionEnd } from './stdio-session.ts';
import { EraCache } from './era-cache.ts';
import { discoverUpstream, type Discovery, type UpstreamEndpoint } from './upstream-link.ts';
import { isInitialize, parsedBody, type BrokerExchange } from './web-exchange.ts';

export type { BrokerExchange };

export interface BrokerDeps {
  log: Logger;
  /** Read at each new session: the ring may be replaced by a reload. */
  sessions: () => KeyRing;
  maxLine: number;
  keepAliveMs: number;
  /** Read when used: the metrics exist only with an admin listener. */
  metrics: () => BrokerMetrics | undefined;
  bridging: () => BridgingConfig;
}

export interface BrokerMetrics extends BridgeMetrics {
  childSpawned(route: string): void;
  childExited(route: string, cause: string): void;
  childrenRunning(route: string, n: number): void;
}

const WARN_CAUSES = new Set(['crashed', 'spawn-failed', 'flooded', 'oversized-line']);

export class StdioBroker implements RouteBroker {
  readonly kind = 'stdio';
  readonly path: string;
  private cfg: StdioConfig;
  private readonly bridge: 'auto' | 'off';
  private readonly deps: BrokerDeps;
  private readonly log: Logger;
  private readonly sessions: ClientSessions<StdioSession>;
  /** Children of ended sessions still being stopped: shutdown waits for them too. */
  private readonly stopping = new Set<StdioSession['child']>();
  /** Every child of this route, whatever it serves, counted until reaped (maxProcesses). */
  private readonly slots: ProcessSlots;
  private closed = false;
  /** For 2026-07-28 clients: what the stdio server is (found once), and the front that bridges them. */
  private readonly eras = new EraCache<'server'>();
  private modern: ModernFront | undefined;

  constructor(route: RouteConfig, deps: BrokerDeps) {
    if (!route.stdio) throw new Error(`route ${route.path} has no stdio upstream`);
    this.path = route.path;
    this.cfg = route.stdio;
    this.bridge = route.bridge ?? 'auto';
    this.deps = deps;
    this.log = deps.log.child({ route: route.path, broker: 'stdio' });
    this.slots = new ProcessSlots(this.cfg.maxProcesses, perCallerShare(this.cfg), `route ${route.path}`);
    const cfg = this.cfg;
    this.sessions = new ClientSessions(
      route.path,
      {
        sessions: deps.sessions,
        keepAliveMs: deps.keepAliveMs,
        // The process count is the real bound (taken in create); the keeper's is the same number.
        limits: () => ({ maxSessions: cfg.maxProcesses, sessionIdle: cfg.idleTimeout }),
        log: this.log,
      },
      {
        create: (pk, ex) => this.open(pk, ex),
        attach: (s, transport) => s.attach(transport),
        served: (s, ex) => {
          ex.brokerUpstream = `stdio:${cfg.command}#${s.child.pid ?? '?'}`;
          s.lastActivity = Date.now();
        },
        deliver: (s, ex, parsed, run) => this.deliver(s, ex, parsed, run),
        check: (s, ex, parsed, answer) => {
          // The child could not be started: the client hears why, not an initialize that never answers.
          if (!s.child.running && answer.status < 300 && ex.req.method === 'POST' && isInitialize(parsed)) {
            void answer.body?.cancel();
            throw new SluiceError(
              'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
              `the stdio server could not be started (${cfg.command})`,
            );
          }
        },
        ended: (s, why, cause) => s.end({ cause: cause === 'closed' ? 'stopped' : cause, detail: why }),
        count: () => undefined,
      },
      { serves: 'from a stdio server', limit: 'maxProcesses' },
    );
  }

  /** Children alive now: sessions', the bridge's pooled ones, the era probe's, and those still stopping. */
  get running(): number {
    return this.slots.running;
  }

  processes(): { running: number; max: number } {
    return { running: this.slots.running, max: this.cfg.maxProcesses };
  }

  state(): BrokerState {
    return { kind: 'stdio', route: this.path, sessions: this.sessions.size, processes: this.processes() };
  }

  /** The same command and settings: a reload keeps this broker and its sessions. */
  keep(route: Route): boolean {
    const r = route.config;
    return JSON.stringify(r.stdio) === JSON.stringify(this.cfg) && (r.bridge ?? 'auto') === this.bridge;
  }

  /** Whether `ex` names one of this process's sessions (its token or HTTP+SSE id). */
  owns(ex: BrokerExchange): boolean {
    return this.sessions.owns(ex);
  }

  handle(ex: BrokerExchange): Promise<void> {
    ex.handedOff = true;
    if (this.closed) return Promise.reject(new SluiceError('SLUICE_ERR_SHUTTING_DOWN'));
    // 2026-07-28 clients are stateless: bridged onto pooled stdio sessions (modern-front.ts).
    if (ex.era === 'stateless' && this.bridge !== 'off') return this.bridged(ex);
    return this.sessions.handle(ex, parsedBody(ex));
  }

  /** A new session: its child spawned within the route's process count, running before the session is. */
  private async open(pk: string, ex: BrokerExchange): Promise<StdioSession> {
    const slot = this.slots.take(callerKey(ex));
    const session: StdioSession = new StdioSession(this.cfg, {
      principal: pk,
      log: this.log,
      maxLine: this.deps.maxLine,
      slot,
      onEnd: (end) => this.ended(session, end),
    });
    this.deps.metrics()?.childSpawned(this.path);
    this.deps.metrics()?.childrenRunning(this.path, this.slots.running);
    try {
      await session.child.ready;
    } catch {
      // ended() has logged the cause; the client hears it in plain words.
      throw new SluiceError(
        'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
        `the stdio server could not be started: ${session.endDetail}`,
      );
    }
    this.log.info({ pid: session.child.pid, command: this.cfg.command }, 'stdio session started');
    return session;
  }

  /** A request reaches the child when it reads its stdin, and its call ends at the exchange's deadline. */
  private async deliver<T>(s: StdioSession, ex: BrokerExchange, parsed: unknown, run: () => Promise<T>): Promise<T> {
    const { res } = ex;
    // At the exchange's deadline the child stops the call; the hand-off answers 504 when nothing was sent yet.
    const id = (parsed as { id?: unknown } | undefined)?.id;
    if (ex.deadline !== undefined && isRequest(parsed)) {
      const expiry = setTimeout(
        () => s.expire(id as RequestId, res.writableEnded || !res.headersSent),
        ex.deadline - Date.now(),
      );
      res.once('close', () => clearTimeout(expiry));
    }
    return s.whenChildReads(this.cfg.stdinWait, run);
  }

  /** The session is over for any reason: the keeper forgets it, the child is counted while it stops. */
  private ended(session: StdioSession, end: SessionEnd): void {
    const keeperCause: SessionEndCause =
      end.cause === 'deleted' || end.cause === 'idle' || end.cause === 'shutdown' || end.cause === 'route-removed'
        ? end.cause
        : 'closed';
    this.sessions.end(session, end.detail, keeperCause);
    const child = session.child;
    if (child.running) {
      this.stopping.add(child);
      void child.gone.then(() => this.stopping.delete(child));
    }
    this.deps.metrics()?.childExited(this.path, end.cause);
    this.deps.metrics()?.childrenRunning(this.path, this.slots.running);
    const level = WARN_CAUSES.has(end.cause) ? 'warn' : 'info';
    this.log[level]({ pid: session.child.pid, cause: end.cause, detail: end.detail }, 'stdio session ended');
  }

  private async bridged(ex: BrokerExchange): Promise<void> {
    let found: Discovery;
    try {
      found = await this.eras.find('server', () =>
        discoverUpstream(this.endpoint(undefined), this.deps.bridging().discoverTimeout),
      );
    } catch (err) {
      // No slot for the probe (maxProcesses): the capacity refusal as it is, a 503 to retry.
      if (err instanceof SluiceError) throw err;
      throw new SluiceError(
        'SLUICE_ERR_UPSTREAM_UNAVAILABLE',
        `the stdio server did not answer initialize: ${(err as Error).message}`,
      );
    }
    this.modern ??= new ModernFront(this.path, (e) => this.endpoint(callerKey(e)), found, {
      log: this.deps.log,
      sessions: this.deps.sessions,
      keepAliveMs: this.deps.keepAliveMs,
      limits: {
        ...this.deps.bridging(),
        maxSessions: Math.min(this.deps.bridging().maxSessions, this.cfg.maxProcesses),
      },
      metrics: this.deps.metrics,
    });
    ex.brokerUpstream = `stdio:${this.cfg.command} (bridged 2026-07-28→2025)`;
    await this.modern.handle(ex, parsedBody(ex));
  }

  /** The stdio server as the bridge reaches it: a child counted for `caller` in the route's one process count. */
  private endpoint(caller: string | undefined): UpstreamEndpoint {
    return { kind: 'stdio', cfg: this.cfg, log: this.log, maxLine: this.deps.maxLine, slots: this.slots, caller };
  }

  /**
   * Ends every session (shutdown, or the route reloaded away); resolves when the children are gone.
   * Each child has killGrace after its SIGTERM, but none beyond `deadline` (shutdown.drain): then
   * the groups still there are SIGKILLed, so Sluice stops within its drain window.
   */
  async close(reason: BrokerCloseReason, deadline: number): Promise<void> {
    this.closed = true;
    this.sessions.close(reason);
    const bridged = this.modern?.close();
    const children = [...this.stopping];
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    await Promise.race([Promise.all(children.map((c) => c.gone)), late]);
    clearTimeout(timer);
    for (const c of children) c.killNow();
    await Promise.all([...children.map((c) => c.gone), bridged]);
  }
}

/** A JSON-RPC request (a method and an id): it has an answer that can be late. */
function isRequest(m: unknown): boolean {
  const r = m as { id?: unknown; method?: unknown } | undefined;
  return typeof r?.method === 'string' && (typeof r.id === 'string' || typeof r.id === 'number');
}
