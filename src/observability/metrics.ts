// Prometheus metrics (prom-client), one registry per gateway. Labels carry only bounded values:
// configured route paths, a fixed list of MCP method names ("other" for the rest), status
// classes, error-catalogue codes and configured replica ids. Never a session id, token, tool
// argument, tool name or client-chosen string.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LiveView, type Refusal } from './live-view.ts';

/** JSON-RPC methods of the MCP revisions; anything else counts as "other". */
const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'server/discover',
  'subscriptions/listen',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Sessions seen within this window count as active. */
const ACTIVE_WINDOW_MS = 10 * 60_000;
/** Bound on the sessions remembered for the active gauge (memory, whatever clients send). */
const MAX_TRACKED_SESSIONS = 100_000;

export interface ExchangeObservation {
  route: string | undefined;
  rpcMethod: string | undefined;
  status: number;
  /** ms from arrival to response headers; undefined when none were sent. */
  headersMs: number | undefined;
  totalMs: number;
  bytesIn: number;
  bytesOut: number;
  /** An error-catalogue code when Sluice refused or failed the exchange itself. */
  refusedCode: string | undefined;
  /** A hashed session handle (never the id itself). */
  sessionHash: string | undefined;
  /** The replica that served it (route path and replica id, as the admin page keys them). */
  replica?: string | undefined;
  /** Set when the exchange was a security refusal: what the admin page lists. */
  refusal?: Omit<Refusal, 'at' | 'route' | 'status'> | undefined;
}

export interface ReplicaHealth {
  route: string;
  replica: string;
  healthy: boolean;
}

export function methodLabel(method: string | undefined): string {
  if (method === undefined) return 'none';
  return KNOWN_METHODS.has(method) ? method : 'other';
}

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none';
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status_class'>;
  private readonly headersSeconds: Histogram<'route' | 'method'>;
  private readonly durationSeconds: Histogram<'route' | 'method'>;
  private readonly streams: Gauge<'route'>;
  private readonly bytesIn: Counter<'route'>;
  private readonly bytesOut: Counter<'route'>;
  private readonly heartbeats: Counter<'route'>;
  private readonly refused: Counter<'reason'>;
  private readonly children: Gauge<'route'>;
  private readonly bridgedTotal: Counter<'route' | 'direction'>;
  private readonly bridgeSessionsNow: Gauge<'route'>;
  private readonly federatedTotal: Counter<'route' | 'server'>;
  private readonly federatedLate: Counter<'route' | 'server' | 'method'>;
  private readonly federatedSessionsNow: Gauge<'route'>;
  private readonly handOffs: Counter<'to' | 'result'>;
  private readonly handOffSeconds: Histogram<'to'>;
  private readonly spawned: Counter<'route'>;
  private readonly exited: Counter<'route' | 'cause'>;
  private readonly sessions = new Map<string, number>();
  /** The admin page's live figures, fed by the same observations. */
  readonly live = new LiveView();

  constructor(replicas: () => ReplicaHealth[]) {
    const registers = [this.registry];
    // Process CPU, memory, event-loop lag and GC, computed when scraped.
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
    this.requests = new Counter({
      name: 'sluice_requests_total',
      help: 'Client requests, by route, JSON-RPC method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      registers,
    });
    this.headersSeconds = new Histogram({
      name: 'sluice_response_headers_seconds',
      help: 'Time from request arrival to response headers.',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.durationSeconds = new Histogram({
      name: 'sluice_request_duration_seconds',
      help: 'Time from request arrival to the end of the response (streams included).',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.streams = new Gauge({
      name: 'sluice_sse_streams_open',
      help: 'SSE responses being relayed now.',
      labelNames: ['route'],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'sluice_request_bytes_total',
      help: 'Request body bytes received from clients.',
      labelNames: ['route'],
      registers,
    });
    this.bytesOut = new Counter({
      name: 'sluice_response_bytes_total',
      help: 'Response body bytes sent to clients.',
      labelNames: ['route'],
      registers,
    });
    this.children = new Gauge({
      name: 'sluice_stdio_children',
      help: 'Stdio server processes running now (one per broker session), by route.',
      labelNames: ['route'],
      registers,
    });
    this.spawned = new Counter({
      name: 'sluice_stdio_children_spawned_total',
      help: 'Stdio server processes started, by route.',
      labelNames: ['route'],
      registers,
    });
    this.exited = new Counter({
      name: 'sluice_stdio_children_exited_total',
      help: 'Stdio sessions ended, by route and cause (deleted, idle, crashed, exited, spawn-failed, flooded, oversized-line, shutdown, route-removed).',
      labelNames: ['route', 'cause'],
      registers,
    });
    this.bridgedTotal = new Counter({
      name: 'sluice_bridged_requests_total',
      help: 'Requests served across protocol eras by a bridge, by route and direction (modern-to-legacy: a 2026-07-28 client to a 2025 server; legacy-to-modern: the other way).',
      labelNames: ['route', 'direction'],
      registers,
    });
    this.bridgeSessionsNow = new Gauge({
      name: 'sluice_bridge_sessions',
      help: 'Sessions a bridge holds now, by route: pooled upstream sessions (2026-07-28 clients) or bridged client sessions (2025 clients).',
      labelNames: ['route'],
      registers,
    });
    this.federatedTotal = new Counter({
      name: 'sluice_federated_requests_total',
      help: 'Requests a federated route sent to one of its servers, by route and server (lists count per server asked).',
      labelNames: ['route', 'server'],
      registers,
    });
    this.federatedLate = new Counter({
      name: 'sluice_federated_list_timeouts_total',
      help: 'Merged lists answered without a server that did not answer within federation.listTimeout, by route, server and method.',
      labelNames: ['route', 'server', 'method'],
      registers,
    });
    this.handOffs = new Counter({
      name: 'sluice_handoffs_total',
      help: 'Requests for broker state another process holds, handed to it: to another worker or another instance (peer), relayed or with the owner gone.',
      labelNames: ['to', 'result'],
      registers,
    });
    this.handOffSeconds = new Histogram({
      name: 'sluice_handoff_head_seconds',
      help: "Time from handing a request to its owner to the owner's response head, by where it went.",
      labelNames: ['to'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.federatedSessionsNow = new Gauge({
      name: 'sluice_federated_sessions',
      help: 'Client sessions a federated route holds now, by route.',
      labelNames: ['route'],
      registers,
    });
    this.heartbeats = new Counter({
      name: 'sluice_heartbeats_total',
      help: 'SSE keep-alive comments written on silent streams.',
      labelNames: ['route'],
      registers,
    });
    this.refused = new Counter({
      name: 'sluice_refused_total',
      help: 'Requests Sluice answered with an error of its own, by error code.',
      labelNames: ['reason'],
      registers,
    });
    const sessions = this.sessions;
    new Gauge({
      name: 'sluice_sessions_active',
      help: `Distinct sessions with a request in the last ${ACTIVE_WINDOW_MS / 60_000} minutes.`,
      registers,
      collect() {
        const oldest = Date.now() - ACTIVE_WINDOW_MS;
        // Entries are kept in last-seen order: stale ones are at the front.
        for (const [k, seen] of sessions) {
          if (seen >= oldest) break;
          sessions.delete(k);
        }
        this.set(sessions.size);
      },
    });
    new Gauge({
      name: 'sluice_upstream_replica_healthy',
      help: 'Whether a replica takes work now (1) or is down, ejected, draining or removed (0).',
      labelNames: ['route', 'replica'],
      registers,
      // Under --workers each worker checks for itself: the sum over workers would say 2 for "up".
      aggregator: 'min',
      collect() {
        this.reset();
        for (const r of replicas()) this.set({ route: r.route, replica: r.replica }, r.healthy ? 1 : 0);
      },
    });
  }

  observeExchange(o: ExchangeObservation): void {
    const route = o.route ?? 'none';
    const method = methodLabel(o.rpcMethod);
    this.requests.inc({ route, method, status_class: statusClass(o.status) });
    if (o.headersMs !== undefined) this.headersSeconds.observe({ route, method }, o.headersMs / 1000);
    this.durationSeconds.observe({ route, method }, o.totalMs / 1000);
    if (o.bytesIn) this.bytesIn.inc({ route }, o.bytesIn);
    if (o.bytesOut) this.bytesOut.inc({ route }, o.bytesOut);
    if (o.refusedCode) this.refused.inc({ reason: o.refusedCode });
    this.live.exchange(route, o.totalMs, o.status >= 500 || o.status === 0);
    if (o.refusal) this.live.refused({ ...o.refusal, at: new Date().toISOString(), route, status: o.status });
    if (o.sessionHash && o.replica) this.live.sessionUsed(o.sessionHash, o.replica);
    if (o.sessionHash) {
      this.sessions.delete(o.sessionHash);
      this.sessions.set(o.sessionHash, Date.now());
      if (this.sessions.size > MAX_TRACKED_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
    }
  }

  childSpawned(route: string): void {
    this.spawned.inc({ route });
  }

  childExited(route: string, cause: string): void {
    this.exited.inc({ route, cause });
  }

  childrenRunning(route: string, n: number): void {
    this.children.set({ route }, n);
  }

  bridged(route: string, direction: string): void {
    this.bridgedTotal.inc({ route, direction });
  }

  bridgeSessions(route: string, n: number): void {
    this.bridgeSessionsNow.set({ route }, n);
  }

  federatedRequest(route: string, server: string): void {
    this.federatedTotal.inc({ route, server });
  }

  federatedListTimeout(route: string, server: string, method: string): void {
    this.federatedLate.inc({ route, server, method });
  }

  handOff(to: 'worker' | 'peer', result: 'relayed' | 'owner-gone', seconds: number): void {
    this.handOffs.inc({ to, result });
    if (result === 'relayed') this.handOffSeconds.observe({ to }, seconds);
  }

  federatedSessions(route: string, n: number): void {
    this.federatedSessionsNow.set({ route }, n);
  }

  streamOpened(route: string, replica?: string): void {
    this.streams.inc({ route });
    if (replica) this.live.streamOpened(replica);
  }

  streamClosed(route: string, replica?: string): void {
    this.streams.dec({ route });
    if (replica) this.live.streamClosed(replica);
  }

  /** Requests so far and SSE streams open now, per route label: the counters /metrics reports. */
  async routeTotals(): Promise<Map<string, { requests: number; streams: number }>> {
    const out = new Map<string, { requests: number; streams: number }>();
    const at = (route: string) => out.get(route) ?? (out.set(route, { requests: 0, streams: 0 }), out.get(route)!);
    for (const v of (await this.requests.get()).values) at(String(v.labels.route)).requests += v.value;
    for (const v of (await this.streams.get()).values) at(String(v.labels.route)).streams += v.value;
    return out;
  }

  heartbeat(route: string): void {
    this.heartbeats.inc({ route });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
