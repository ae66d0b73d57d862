// The gateway process: listeners, the request pipeline, and graceful shutdown.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import { accessWriter, type Logger } from '../observability/logger.ts';
import { startHealthChecks, type Probe } from '../routing/health-checks.ts';
import type { Replica } from '../routing/replica-pool.ts';
import { compileRoutes, type Route } from '../routing/route-table.ts';
import { trustList } from '../security/forwarded.ts';
import { KeyRing } from '../session/key-ring.ts';
import { probeHttp, probeTcp } from '../transport/health-probe.ts';
import { UpstreamClient } from '../transport/upstream-client.ts';
import type { GatewayContext } from './context.ts';
import { handleRequest } from './pipeline.ts';

export interface Gateway {
  readonly ctx: GatewayContext;
  /** Bound addresses, in listener order (useful with port 0). */
  readonly addresses: AddressInfo[];
  /**
   * Apply a new config: routes and replicas (draining, removal, health settings), timeouts,
   * limits, logging, keys. Replica state carries over; exchanges in flight keep running.
   * Listeners cannot change without a restart (a warning says so).
   */
  reload(config: Config): void;
  /** Stop accepting, let POSTs finish up to the drain deadline, end SSE streams with retry. */
  shutdown(): Promise<void>;
}

const probe: Probe = (replica, path, timeoutMs) => (path === undefined ? probeTcp(replica.url, timeoutMs) : probeHttp(replica.origin, path, timeoutMs));

/** The key ring from config, else SLUICE_SESSION_KEYS, else a generated one (with a warning). */
export function sessionKeyRing(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): KeyRing {
  if (config.sessions.keys.length > 0) return new KeyRing(config.sessions.keys.map((k) => Buffer.from(k, 'base64url')));
  const fromEnv = env['SLUICE_SESSION_KEYS'];
  if (fromEnv?.trim()) return KeyRing.parse(fromEnv);
  log.warn('no session keys configured (sessions.keys or SLUICE_SESSION_KEYS): generated one; sessions will not survive a restart or span Sluice replicas');
  return KeyRing.generate();
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const ctx: GatewayContext = {
    sessions: sessionKeyRing(config, log),
    config,
    routes: compileRoutes(config.routes),
    client: new UpstreamClient({ connectTimeoutMs: config.timeouts.connect, headersTimeoutMs: config.timeouts.responseHeaders }),
    log,
    access: config.logging.access ? accessWriter(log) : undefined,
    trusted: trustList(config.trustedProxies),
    active: new Set(),
    draining: false,
  };
  const onHealth = (route: Route, replica: Replica, healthy: boolean): void => {
    if (healthy) log.info({ route: route.path, replica: replica.id }, 'replica up');
    else log.warn({ route: route.path, replica: replica.id }, 'replica down: health checks failed');
  };
  let stopChecks = startHealthChecks(ctx.routes, probe, onHealth);
  const drainTimers = new Set<NodeJS.Timeout>();
  /** At a drain deadline, streams still open on the replica end (clients get a retry hint). */
  const endAtDeadline = (replica: Replica, at: number): void => {
    const t = setTimeout(() => {
      drainTimers.delete(t);
      if (!replica.removed && !replica.draining) return;
      for (const a of ctx.active) if (a.replica === replica) a.stop(ctx.config.shutdown.retryHint);
    }, Math.max(0, at - Date.now()));
    t.unref();
    drainTimers.add(t);
  };

  const reload = (next: Config): void => {
    if (JSON.stringify(next.listen) !== JSON.stringify(ctx.config.listen)) log.warn('listener changes need a restart; kept the running listeners');
    const now = Date.now();
    const before = new Map(ctx.routes.flatMap((r) => r.pool.replicas.map((rep) => [rep, { draining: rep.draining, route: r }] as const)));
    const routes = compileRoutes(next.routes, ctx.routes, now);
    for (const [rep, was] of before) {
      if (rep.removed) {
        log.info({ route: was.route.path, replica: rep.id }, 'replica removed: its sessions end now, its open exchanges within drainTimeout');
        endAtDeadline(rep, now + was.route.config.drainTimeout);
      } else if (rep.draining && !was.draining) {
        log.info({ route: was.route.path, replica: rep.id, until: new Date(rep.drainDeadline).toISOString() }, 'replica draining');
        endAtDeadline(rep, rep.drainDeadline);
      }
    }
    if (next.sessions.keys.length > 0) ctx.sessions = sessionKeyRing(next, log);
    ctx.config = next;
    ctx.routes = routes;
    ctx.access = next.logging.access ? accessWriter(log) : undefined;
    ctx.trusted = trustList(next.trustedProxies);
    stopChecks();
    stopChecks = startHealthChecks(routes, probe, onHealth);
    log.info({ routes: routes.length }, 'config reloaded');
  };
  const servers: Server[] = [];
  const addresses: AddressInfo[] = [];
  try {
    for (const l of config.listen) {
      const server = createServer({ maxHeaderSize: config.limits.headerBytes, noDelay: true, keepAliveTimeout: 5_000 }, (req, res) =>
        handleRequest(ctx, req, res),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      addresses.push(server.address() as AddressInfo);
    }
  } catch (err) {
    stopChecks();
    for (const s of servers) s.close();
    await ctx.client.close();
    throw err;
  }

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      ctx.draining = true;
      stopChecks();
      for (const t of drainTimers) clearTimeout(t);
      const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of servers) s.closeIdleConnections();
      const { drain, retryHint } = config.shutdown;
      for (const a of ctx.active) if (a.kind === 'stream') a.stop(retryHint);
      const deadline = Date.now() + drain;
      while ([...ctx.active].some((a) => a.kind === 'request') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const a of ctx.active) a.stop(retryHint);
      for (const s of servers) s.closeAllConnections();
      await closed;
      await ctx.client.close();
    })();
    return shuttingDown;
  };
  return { ctx, addresses, reload, shutdown };
}
