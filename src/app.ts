// The composition root: builds the running gateway from a config (listeners, routes and their
// guards, the upstream client, admin listener, health checks), and reloads and shuts it down.
// Requests go through src/proxy/pipeline.ts; this file only wires.
import { Agent } from 'undici';
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { checkAuthSecrets } from './config/checks.ts';
import { checkRouteUrls } from './routing/route-checks.ts';
import { openListener, openWorkerSocket, type Listening } from './transport/listener.ts';
import { ConfigError } from './config/load.ts';
import type { Config, RouteConfig } from './config/schema.ts';
import { registeredPath, registeredRoute, Registry } from './routing/registry.ts';
import { systemResolver } from './transport/guarded-connect.ts';
import { adminRefused, startAdminServer } from './proxy/admin-server.ts';
import { AdminUi } from './proxy/admin-ui.ts';
import { adminSnapshot } from './proxy/admin-view.ts';
import type { Connector, Resolver } from './transport/guarded-connect.ts';
import { accessWriter, type Logger } from './observability/logger.ts';
import { startHealthChecks, type Probe } from './routing/health-checks.ts';
import type { Replica } from './routing/replica-pool.ts';
import { compileRoutes, withMembers, type Route } from './routing/route-table.ts';
import { isBearerSyntax } from './security/bearer.ts';
import { trustList } from './security/forwarded.ts';
import { listenerPolicy } from './security/host-origin.ts';
import { KeyRing } from './session/key-ring.ts';
import { probeConnect, probeHttp } from './transport/health-probe.ts';
import { UpstreamClient } from './transport/upstream-client.ts';
import { BodyBudget } from './transport/read-body.ts';
import { GatewayMetrics, type ReplicaHealth } from './observability/metrics.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { federationStates, routeLabel, type GatewayContext, type GatewayRoute } from './proxy/context.ts';
import { handleRequest } from './proxy/pipeline.ts';
import { BrokerSet } from './broker/broker-set.ts';
import { Peers } from './broker/peers.ts';
import { PEER_HEADER, peerSigned } from './broker/peer-auth.ts';
import { advertise } from './broker/instance.ts';
import { buildGuards, type GuardDeps, type RouteGuard } from './proxy/route-guard.ts';
import { RedisBuckets } from './transport/redis-buckets.ts';

export interface Gateway {
  readonly ctx: GatewayContext;
  /** Bound addresses, in listener order (useful with port 0). */
  readonly addresses: AddressInfo[];
  /** The admin listener's address, when one is configured. */
  readonly adminAddress: AddressInfo | undefined;
  /** The peer listener's address (`cluster:`), when one is configured. */
  readonly peerAddress: AddressInfo | undefined;
  /**
   * Apply a new config: routes and replicas (draining, removal, health settings), timeouts,
   * limits, logging, keys. Replica state carries over; exchanges in flight keep running.
   * Listeners cannot change without a restart (a warning says so).
   */
  reload(config: Config): void;
  /** Stop accepting, let POSTs finish up to the drain deadline, end SSE streams with retry. */
  shutdown(): Promise<void>;
  /** Routes without a replica that takes work now (empty: ready), or why the gateway is not. */
  notReady(): string[];
  /** The federated routes' servers and how they stand (the admin API's /admin/federation). */
  brokerStates(): Record<string, unknown>[];
  /** Under `--workers`: the other workers this one hands broker sessions to. */
  readonly peers: Peers | undefined;
  /** Under `--workers`: another worker changed the registrations; read them again. */
  registrationsChanged(): Promise<void>;
}

/** The key ring from config, else SLUICE_SESSION_KEYS, else a generated one (with a warning). */
export function sessionKeyRing(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): KeyRing {
  if (config.sessions.keys.length > 0) return new KeyRing(config.sessions.keys.map((k) => Buffer.from(k, 'base64url')));
  const fromEnv = env['SLUICE_SESSION_KEYS'];
  if (fromEnv?.trim()) return KeyRing.parse(fromEnv);
  log.warn(
    'no session keys configured (sessions.keys or SLUICE_SESSION_KEYS): generated one; sessions will not survive a restart or span Sluice replicas',
  );
  return KeyRing.generate();
}

/** What tests may replace: DNS answers and the socket opener (so no traffic leaves loopback). */
export interface GatewayDeps {
  resolver?: Resolver;
  connector?: Connector;
  /** Replaces the OTLP exporter when tracing is on (tests collect spans in memory). */
  spanExporter?: SpanExporter;
  /**
   * Run as one worker of several (`serve --workers`): no admin listener of its own (the primary
   * has it), and a private socket at `socketPath` where the other workers hand it its sessions.
   */
  worker?: { id: number; socketPath: string };
}

/** Routes from the config file plus, when enabled, the user-registered ones. */
function routeConfigs(config: Config, registry: Registry | undefined, log: Logger): RouteConfig[] {
  const out = [...config.routes];
  for (const r of registry?.all() ?? []) {
    try {
      const route = registeredRoute(config, r);
      if (out.some((c) => c.path === route.path)) throw new Error(`path ${route.path} is taken by a configured route`);
      out.push(route);
    } catch (err) {
      log.warn(
        { tenant: r.tenant, name: r.name, err: (err as Error).message.split('\n')[0] },
        'registered upstream skipped',
      );
    }
  }
  return out;
}

async function loadRegistry(config: Config): Promise<Registry | undefined> {
  if (!config.registrations.enabled) return undefined;
  try {
    return await Registry.load(config.registrations.file);
  } catch (err) {
    throw new ConfigError('registrations.file', [(err as Error).message]);
  }
}

/**
 * The registration API's token: needed when registrations are on; optional otherwise (health and metrics need none).
 */
function adminToken(config: Config, env: NodeJS.ProcessEnv): string {
  const token = config.admin.token || env['SLUICE_ADMIN_TOKEN'] || '';
  if (token === '' && !config.registrations.enabled) return '';
  if (token.length < 16)
    throw new ConfigError('admin', [
      'admin.token (or SLUICE_ADMIN_TOKEN) must be at least 16 characters when set, and is needed for registrations',
    ]);
  if (!isBearerSyntax(token))
    throw new ConfigError('admin', [
      'admin.token (or SLUICE_ADMIN_TOKEN) must be sendable as a bearer token: letters, digits and - . _ ~ + / (= only at the end)',
    ]);
  return token;
}

/** The payload log's hash key: configured, from the environment, or random for this process. */
function logHashKey(config: Config, env: NodeJS.ProcessEnv = process.env): Buffer {
  const text = config.logging.hashKey || env['SLUICE_LOG_HASH_KEY'] || '';
  return text ? Buffer.from(text, 'utf8') : randomBytes(32);
}

/** Said at start and at every reload: a route whose upstream certificates are not verified. */
function warnUnverified(routes: readonly Route[], log: Logger): void {
  for (const r of routes) {
    if (r.tls && !r.tls.rejectUnauthorized && r.pool.replicas.some((rep) => rep.url.protocol === 'https:')) {
      log.warn(
        { route: r.path },
        'TLS verification of upstream certificates is OFF for this route (tls.verify: false)',
      );
    }
  }
}

/** A stdio route always can; a federated route when any of its servers can. */
function takesWork(r: Route, now: number): boolean {
  if (r.config.stdio) return true;
  if (r.members.length > 0) return r.members.some((m) => takesWork(m.route, now));
  return r.pool.replicas.some((rep) => rep.takesNew(now));
}

function replicaHealth(ctx: GatewayContext): ReplicaHealth[] {
  const now = Date.now();
  // Registered routes are left out: their number is the tenants' choice, not the operator's.
  return ctx.routes
    .filter((r) => routeLabel(ctx, r.path) === r.path)
    .flatMap((r) => [
      ...r.pool.replicas.map((rep) => ({ route: r.path, replica: rep.id, healthy: rep.takesNew(now) })),
      // A federated server's replicas, named by server.
      ...r.members.flatMap((m) =>
        m.route.pool.replicas.map((rep) => ({
          route: r.path,
          replica: `${m.name}/${rep.id}`,
          healthy: rep.takesNew(now),
        })),
      ),
    ]);
}

/**
 * The route table with each route's guard (auth, policy, limits); a missing secret is a config
 * error naming the route. `previous` (a reload) keeps replica state and rate-limit buckets.
 */
function gatewayRoutes(
  configs: readonly RouteConfig[],
  deps: Omit<GuardDeps, 'env'>,
  brokers: BrokerSet,
  previous: readonly GatewayRoute[] = [],
  now = Date.now(),
): GatewayRoute[] {
  let guards: Map<string, RouteGuard>;
  try {
    guards = buildGuards(
      configs,
      { ...deps, env: process.env },
      new Map(previous.flatMap((r) => (r.guard ? [[r.path, r.guard] as const] : []))),
    );
  } catch (err) {
    throw new ConfigError('auth', [(err as Error).message]);
  }
  const compiled = compileRoutes(configs, previous, now);
  const byPath = brokers.sync(compiled);
  return compiled.map((r) => ({
    ...r,
    guard: guards.get(r.path),
    broker: byPath.get(r.path),
  }));
}

export async function startGateway(config: Config, log: Logger, deps: GatewayDeps = {}): Promise<Gateway> {
  checkRouteUrls(config);
  checkAuthSecrets(config);
  const registry = await loadRegistry(config);
  const token = config.admin.listen ? adminToken(config, process.env) : '';
  const client = new UpstreamClient({
    connectTimeoutMs: config.timeouts.connect,
    headersTimeoutMs: config.timeouts.responseHeaders > 0 ? config.timeouts.responseHeaders + 2_000 : 0,
    ...deps,
  });
  const rl = config.rateLimiting;
  const sharedBuckets = rl.redis
    ? new RedisBuckets(rl.redis, rl.keyPrefix, rl.timeout, (err) =>
        log.debug({ err: err.message }, 'redis connection error'),
      )
    : undefined;
  if (sharedBuckets && !(await sharedBuckets.ready(2_000)))
    log.warn({ failOpen: rl.failOpen }, 'rate-limit Redis not reachable at start; limits apply once it is');
  // Broker state another process holds is handed to it: another worker's, or another instance's on a cluster.
  const peers =
    deps.worker || config.cluster
      ? new Peers(
          () => ctx.sessions,
          log,
          () => ctx.metrics,
        )
      : undefined;
  // Broker routes (stdio upstreams) read the key ring and limits of the running config.
  const brokers = new BrokerSet({
    peers,
    log,
    sessions: () => ctx.sessions,
    maxLine: config.limits.body,
    keepAliveMs: config.timeouts.heartbeat,
    metrics: () => ctx.metrics,
    bridging: () => ctx.config.bridging,
    federation: () => ctx.config.federation,
    federationMetrics: () => ctx.metrics,
    // The gateway's timeouts on every SDK client the brokers open upstream (undici's 300 s
    // defaults otherwise): connect (in the connector), response headers, stream idle (0: off).
    upstreamAgent: (policy, tls) =>
      new Agent({
        connect: client.connectorFor(policy, tls),
        keepAliveTimeout: 4_000,
        headersTimeout: config.timeouts.responseHeaders,
        bodyTimeout: config.timeouts.streamIdle,
      }),
  });
  const ctx: GatewayContext = {
    sessions: sessionKeyRing(config, log),
    config,
    routes: gatewayRoutes(routeConfigs(config, registry, log), { client, shared: sharedBuckets }, brokers),
    sharedBuckets,
    client,
    log,
    access: config.logging.access ? accessWriter(log, deps.worker?.id) : undefined,
    trusted: trustList(config.trustedProxies),
    active: new Set(),
    draining: false,
    peerConnections: new WeakSet(),
    inFlight: 0,
    bodies: new BodyBudget(config.limits.bodyMemory),
    metrics: config.admin.listen ? new GatewayMetrics(() => replicaHealth(ctx)) : undefined,
    logHashKey: logHashKey(config),
    // Loaded only when on: the SDK and its OTLP exporter are megabytes every gateway would carry.
    tracing: config.tracing.enabled
      ? (await import('./observability/tracing.ts')).createTracing(config.tracing.serviceName, deps.spanExporter)
      : undefined,
    // Two connects 200 ms apart: a process that is dying can still complete a handshake
    // from its listen backlog for a moment after its connections broke.
    reachable: async (route, replica) => {
      const attempt = () => probeReplica(ctx, route, replica, undefined, Math.min(ctx.config.timeouts.connect, 2_000));
      if (!(await attempt())) return false;
      await new Promise((r) => setTimeout(r, 200));
      return attempt();
    },
  };
  const gateway = new RunningGateway(ctx, registry, brokers, peers, deps.worker?.id);
  await gateway.listen(config, token, deps.resolver ?? systemResolver, deps.worker?.socketPath);
  return gateway;
}

/** A health-check probe of one replica, through the route's guarded connector like its traffic. */
function probeReplica(
  ctx: GatewayContext,
  route: Route,
  replica: Replica,
  path: string | undefined,
  timeoutMs: number,
): Promise<boolean> {
  const connect = ctx.client.connectorFor(route.policy, route.tls);
  return path === undefined
    ? probeConnect(replica.url, timeoutMs, connect)
    : probeHttp(replica.origin, path, timeoutMs, connect);
}

/** The running gateway: its routes' life (health checks, draining, reloads), listeners and shutdown. */
class RunningGateway implements Gateway {
  readonly ctx: GatewayContext;
  readonly addresses: AddressInfo[] = [];
  adminAddress: AddressInfo | undefined;
  peerAddress: AddressInfo | undefined;
  private peerServer: Listening | undefined;
  private readonly registry: Registry | undefined;
  private readonly brokers: BrokerSet;
  private readonly servers: Listening[] = [];
  private readonly drainTimers = new Set<NodeJS.Timeout>();
  private stopChecks: () => void;
  private shuttingDown: Promise<void> | undefined;

  readonly peers: Peers | undefined;
  private readonly workerId: number | undefined;
  private ui: AdminUi | undefined;

  constructor(
    ctx: GatewayContext,
    registry: Registry | undefined,
    brokers: BrokerSet,
    peers: Peers | undefined,
    workerId: number | undefined,
  ) {
    this.workerId = workerId;
    this.ctx = ctx;
    this.registry = registry;
    this.brokers = brokers;
    this.peers = peers;
    warnUnverified(ctx.routes, ctx.log);
    this.stopChecks = startHealthChecks(withMembers(ctx.routes), this.probe, this.onHealth);
  }

  private readonly probe: Probe = (route, replica, path, timeoutMs) =>
    probeReplica(this.ctx, route, replica, path, timeoutMs);

  private readonly onHealth = (route: Route, replica: Replica, healthy: boolean): void => {
    if (healthy) this.ctx.log.info({ route: route.path, replica: replica.id }, 'replica up');
    else this.ctx.log.warn({ route: route.path, replica: replica.id }, 'replica down: health checks failed');
  };

  /** Another worker changed the registrations file: read it again and rebuild the routes. */
  async registrationsChanged(): Promise<void> {
    if (!this.registry) return;
    await this.registry.reread();
    this.applyRoutes(this.ctx.config);
  }

  notReady(): string[] {
    const ctx = this.ctx;
    return ctx.draining
      ? ['shutting down']
      : ctx.routes.filter((r) => !takesWork(r, Date.now())).map((r) => `route ${r.path}: no replica takes work`);
  }

  brokerStates(): Record<string, unknown>[] {
    return federationStates(this.ctx.routes);
  }

  /**
   * The public listeners, then the admin listener (a worker has its private socket instead); on
   * any failure everything opened so far closes.
   */
  async listen(config: Config, token: string, resolver: Resolver, workerSocket?: string): Promise<void> {
    const ctx = this.ctx;
    try {
      for (const l of config.listen) {
        const policy = listenerPolicy(l);
        const server = await openListener(l, config, (req, res) => handleRequest(ctx, req, res, policy), ctx.log);
        this.servers.push(server);
        this.addresses.push(server.server.address() as AddressInfo);
      }
      const first = config.listen[0];
      if (workerSocket && this.peers && first) {
        const peers = this.peers;
        const policy = listenerPolicy(first);
        const internal = await openWorkerSocket(workerSocket, (req, res) => handleRequest(ctx, req, res, policy));
        internal.server.on('connection', (socket: Socket) => peers.internal.add(socket));
        this.servers.push(internal);
      }
      if (config.cluster && this.peers && first) {
        const peers = this.peers;
        const policy = listenerPolicy(first);
        const peer = await openListener(
          config.cluster.listen,
          config,
          (req, res) => {
            // Only another instance of this cluster (it signs with the shared session keys) is served here.
            if (!peerSigned(ctx.sessions, req.headers[PEER_HEADER], req.method ?? 'GET', req.url ?? '/')) {
              res.writeHead(401, { 'content-type': 'text/plain' }).end('not a peer of this Sluice cluster\n');
              return;
            }
            peers.fromPeer.add(req.socket);
            ctx.peerConnections.add(req.socket);
            handleRequest(ctx, req, res, policy);
          },
          ctx.log,
        );
        // Kept open through the drain (closed after it): peers hand in requests for sessions held here.
        this.peerServer = peer;
        const at = peer.server.address() as AddressInfo;
        this.peerAddress = at;
        advertise(config.cluster.advertise ?? `${at.address}:${at.port}`);
      }
      if (config.admin.listen) {
        // A worker's admin handler listens beside its private socket: the primary hands it the
        // registration API (the primary answers health, readiness and metrics itself).
        const adminSocket = workerSocket ? workerSocket.replace(/\.sock$/, '.admin.sock') : undefined;
        const admin = await startAdminServer(
          {
            ctx,
            registry: this.registry,
            token,
            resolver,
            onChange: () => this.applyRoutes(ctx.config),
            notReady: () => this.notReady(),
            ui: (this.ui = new AdminUi({
              token,
              host: config.admin.listen.host,
              log: ctx.log,
              refused: (req, reason, status) => adminRefused(this.ctx, req, reason, status),
              snapshot: () =>
                adminSnapshot(
                  this.ctx,
                  this.registry?.all() ?? [],
                  (r) => registeredPath(this.ctx.config, r.tenant, r.name),
                  this.notReady(),
                  this.workerId,
                ),
            })),
          },
          config.admin.listen,
          adminSocket,
        );
        this.servers.push({
          server: admin,
          closeIdle: () => admin.closeIdleConnections(),
          closeAll: () => admin.closeAllConnections(),
          unwatch: () => undefined,
        });
        if (!adminSocket) this.adminAddress = admin.address() as AddressInfo;
      }
    } catch (err) {
      this.stopChecks();
      for (const s of [...this.servers, ...(this.peerServer ? [this.peerServer] : [])]) {
        s.unwatch();
        s.server.close();
      }
      await ctx.client.close();
      await ctx.sharedBuckets?.close?.();
      throw err;
    }
  }

  /** At a drain deadline, streams still open on the replica end (clients get a retry hint). */
  private endAtDeadline(replica: Replica, at: number): void {
    const t = setTimeout(
      () => {
        this.drainTimers.delete(t);
        if (!replica.removed && !replica.draining) return;
        for (const a of this.ctx.active) a.replicaGone(replica, this.ctx.config.shutdown.retryHint);
      },
      Math.max(0, at - Date.now()),
    );
    t.unref();
    this.drainTimers.add(t);
  }

  /** Swap in the routes of `config` (plus registrations), carrying replica state over. */
  private applyRoutes(config: Config): void {
    const { ctx } = this;
    const log = ctx.log;
    const now = Date.now();
    const before = new Map(
      ctx.routes.flatMap((r) => r.pool.replicas.map((rep) => [rep, { draining: rep.draining, route: r }] as const)),
    );
    const configs = routeConfigs(config, this.registry, log);
    const routes = gatewayRoutes(
      configs,
      { client: ctx.client, shared: ctx.sharedBuckets },
      this.brokers,
      ctx.routes,
      now,
    );
    for (const [rep, was] of before) {
      if (rep.removed) {
        log.info(
          { route: was.route.path, replica: rep.id },
          'replica removed: its sessions end now, its open exchanges within drainTimeout',
        );
        this.endAtDeadline(rep, now + was.route.config.drainTimeout);
      } else if (rep.draining && !was.draining) {
        log.info(
          { route: was.route.path, replica: rep.id, until: new Date(rep.drainDeadline).toISOString() },
          'replica draining',
        );
        this.endAtDeadline(rep, rep.drainDeadline);
      }
    }
    ctx.routes = routes;
    warnUnverified(routes, log);
    this.stopChecks();
    this.stopChecks = startHealthChecks(withMembers(routes), this.probe, this.onHealth);
  }

  reload(next: Config): void {
    const { ctx } = this;
    const log = ctx.log;
    if (JSON.stringify(next.listen) !== JSON.stringify(ctx.config.listen))
      log.warn('listener changes need a restart; kept the running listeners');
    if (
      JSON.stringify(next.admin) !== JSON.stringify(ctx.config.admin) ||
      JSON.stringify(next.registrations) !== JSON.stringify(ctx.config.registrations)
    ) {
      log.warn('admin and registrations changes need a restart; kept the running ones');
    }
    const rl = (c: Config) => [c.rateLimiting.redis, c.rateLimiting.keyPrefix, c.rateLimiting.timeout];
    if (JSON.stringify(rl(next)) !== JSON.stringify(rl(ctx.config)))
      log.warn('rateLimiting.redis, keyPrefix and timeout changes need a restart; kept the running store');
    checkRouteUrls(next);
    if (next.sessions.keys.length > 0) ctx.sessions = sessionKeyRing(next, log);
    this.applyRoutes({ ...next, admin: ctx.config.admin, registrations: ctx.config.registrations });
    ctx.config = { ...next, admin: ctx.config.admin, registrations: ctx.config.registrations };
    ctx.access = next.logging.access ? accessWriter(log, this.workerId) : undefined;
    ctx.trusted = trustList(next.trustedProxies);
    ctx.bodies.cap = next.limits.bodyMemory;
    log.info({ routes: ctx.routes.length }, 'config reloaded');
  }

  shutdown(): Promise<void> {
    this.shuttingDown ??= this.drainAndClose();
    return this.shuttingDown;
  }

  private async drainAndClose(): Promise<void> {
    const { ctx, servers } = this;
    ctx.draining = true;
    this.stopChecks();
    for (const s of servers) s.unwatch();
    for (const t of this.drainTimers) clearTimeout(t);
    const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.server.close(() => r()))));
    for (const s of servers) s.closeIdle();
    // The admin page's event streams would hold the admin listener open.
    this.ui?.close();
    const { drain, retryHint } = ctx.config.shutdown;
    for (const a of ctx.active) if (a.kind === 'stream') a.stop(retryHint);
    const deadline = Date.now() + drain;
    while ([...ctx.active].some((a) => a.kind === 'request') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const a of ctx.active) a.stop(retryHint);
    if (this.peerServer) {
      const peer = this.peerServer;
      peer.unwatch();
      peer.server.close();
      peer.closeAll();
    }
    // Broker sessions end with their children (process groups stopped, reaped) before Sluice exits.
    await this.brokers.close('shutdown', Date.now() + Math.max(1000, deadline - Date.now()));
    await this.peers?.close();
    for (const s of servers) s.closeAll();
    await closed;
    await ctx.client.close();
    await ctx.sharedBuckets?.close?.();
    await ctx.tracing?.shutdown();
  }
}
