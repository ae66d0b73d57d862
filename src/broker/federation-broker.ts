// A federated route (`servers:`): several MCP servers behind one URL, served as one. Sluice is
// the server its 2025-era clients see (client-sessions.ts, a FederatedSession each) and a client of
// every server, each reached with its own settings: replicas, TLS, address policy (an undici Agent
// on the guarded connector per server) and credential. Each server's era is found once (as the
// bridge does), so a server of either era, or a stdio server, can be a member. What the client
// sees: merged capabilities, prefixed names (federation-names.ts), and only what its policy lets it use.
import { Server, type ServerCapabilities } from '@modelcontextprotocol/server';
import type { Agent } from 'undici';
import type { FederationConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Principal } from '../security/principal.ts';
import type { ToolPolicy } from '../security/tool-policy.ts';
import type { Member, Route } from '../routing/route-table.ts';
import { hasEnvelope, type BridgeDeps } from './bridge-broker.ts';
import type { BrokerCloseReason, BrokerState, RouteBroker } from '../core/route-broker.ts';
import { callerKey } from './bridge-common.ts';
import { perCallerShare, ProcessSlots } from './process-slots.ts';
import { FederatedSession, type FederatedMember, type FederationShared } from './federated-session.ts';
import { Namespace } from './federation-names.ts';
import { routeRequest } from './federation-rewrite.ts';
import { ClientSessions } from './client-sessions.ts';
import { ModernFront } from './modern-front.ts';
import { SessionPipe } from './session-pipe.ts';
import type { LinkTarget } from './member-link.ts';
import {
  discoverUpstream,
  guardedFetch,
  type Discovery,
  type FetchLike,
  type UpstreamEndpoint,
} from './upstream-link.ts';
import { EraCache } from './era-cache.ts';
import { boundedLists } from './list-bound.ts';
import { parsedBody, type BrokerExchange } from './web-exchange.ts';

export interface FederationMetrics {
  federatedRequest(route: string, server: string): void;
  federatedListTimeout(route: string, server: string, method: string): void;
  federatedSessions(route: string, n: number): void;
}

export interface FederationDeps extends BridgeDeps {
  federation: () => FederationConfig;
  maxLine: number;
  federationMetrics: () => FederationMetrics | undefined;
}

/** What a federated route needs of the proxy's exchange: who asks, its policy, and each server's credential. */
export interface FederationExchange extends BrokerExchange {
  readonly principal: Principal | undefined;
  /** The route's guard: its policy filters the merged lists. */
  readonly route: { readonly guard?: { readonly policy: ToolPolicy } | undefined } | undefined;
  /** A server's own credential (`servers.<name>.upstreamCredential`), when it has one. */
  readonly serverCredential?: ((server: string) => Promise<{ header: string; value: string }> | undefined) | undefined;
  /** The server a request went to, for the access log. */
  federatedServer: string | undefined;
}

/** One server of the route: its own replicas and agent; its era found once and remembered. */
class RouteMember implements FederatedMember {
  readonly name: string;
  readonly prefix: string;
  /** Its era and capabilities once found (undefined before, or while it cannot be asked). */
  get known(): Discovery | undefined {
    return this.eras.get(this.name);
  }
  private readonly eras = new EraCache();
  member: Member;
  /** A stdio server's processes over every session (and its era probe), running or stopping. */
  readonly slots: ProcessSlots | undefined;
  private readonly agent: Agent | undefined;
  private readonly fetch: FetchLike | undefined;
  private readonly deps: FederationDeps;
  private readonly log: Logger;

  constructor(member: Member, deps: FederationDeps, log: Logger) {
    this.name = member.name;
    this.prefix = member.prefix;
    this.member = member;
    this.deps = deps;
    this.log = log;
    const stdio = member.config.stdio;
    this.slots = stdio
      ? new ProcessSlots(stdio.maxProcesses, perCallerShare(stdio), `federated server "${member.name}"`)
      : undefined;
    if (!member.config.stdio) {
      this.agent = deps.upstreamAgent(member.route.policy, member.route.tls);
      this.fetch = boundedLists(guardedFetch(this.agent), member.name, {
        maxBytes: () => deps.federation().maxListBytes,
        rememberMs: () => deps.federation().listCache,
        refused: (err) => log.warn({ server: member.name, err }, 'federated list refused'),
      });
    }
  }

  get kind(): 'http' | 'stdio' {
    return this.member.config.stdio ? 'stdio' : 'http';
  }

  target(
    credential: { header: string; value: string } | undefined,
    authorization: string | undefined,
    caller?: string,
  ): LinkTarget {
    const headers: Record<string, string> = {};
    if (credential) headers[credential.header] = credential.value;
    else if (authorization) headers['authorization'] = authorization;
    return {
      name: this.name,
      discover: () => this.discover(headers),
      endpoint: () => this.endpoint(headers, caller),
    };
  }

  private endpoint(headers: Record<string, string>, caller?: string): UpstreamEndpoint {
    const stdio = this.member.config.stdio;
    // Every session of the route runs its own process of this server: bounded by its maxProcesses.
    if (stdio && this.slots)
      return { kind: 'stdio', cfg: stdio, log: this.log, maxLine: this.deps.maxLine, slots: this.slots, caller };
    const replica = this.member.route.pool.pick(Date.now());
    if (!replica) throw new Error('no healthy replica');
    return { kind: 'http', url: replica.url.href, fetch: this.fetch as FetchLike, headers: () => headers };
  }

  private discover(headers: Record<string, string>): Promise<Discovery> {
    return this.eras.find(
      this.name,
      async () => discoverUpstream(this.endpoint(headers), this.deps.bridging().discoverTimeout),
      { found: (f) => this.log.info({ era: f.era, upstream: f.serverInfo.name }, 'federated server found') },
    );
  }

  state(): Record<string, unknown> {
    const now = Date.now();
    return {
      server: this.name,
      prefix: this.prefix,
      kind: this.kind,
      era: this.known?.era,
      upstreamServer: this.known?.serverInfo.name,
      replicas: this.member.route.pool.replicas.map((r) => ({ id: r.id, state: r.state(now) })),
      ...(this.slots ? { processes: this.slots.running } : {}),
    };
  }

  async close(): Promise<void> {
    await this.agent?.destroy().catch(() => undefined);
  }
}

export class FederationBroker implements RouteBroker<FederationExchange> {
  readonly kind = 'federation';
  readonly path: string;
  private route: Route;
  private readonly deps: FederationDeps;
  private readonly log: Logger;
  private readonly members: RouteMember[];
  private readonly ns: Namespace<RouteMember>;
  private readonly fronts: ClientSessions<FederatedSession>;
  private policy: ToolPolicy | undefined;
  private readonly shared: FederationShared;
  /** The modern front for 2026-07-28 callers, made at the first one. */
  private modern: ModernFront | undefined;
  /** Federated sessions serving the modern front (not client sessions of their own). */
  private readonly detached = new Set<FederatedSession>();

  constructor(route: Route, deps: FederationDeps) {
    this.path = route.path;
    this.route = route;
    this.deps = deps;
    this.log = deps.log.child({ route: route.path, broker: 'federation' });
    this.members = route.members.map((m) => new RouteMember(m, deps, this.log.child({ server: m.name })));
    this.ns = new Namespace(this.members, route.config.separator ?? '__');
    const shared: FederationShared = (this.shared = {
      route: route.path,
      ns: this.ns,
      log: this.log,
      times: () => ({ ...deps.federation() }),
      policy: () => this.policy,
      listTimedOut: (server, method) => deps.federationMetrics()?.federatedListTimeout(this.path, server, method),
      requested: (server) => deps.federationMetrics()?.federatedRequest(this.path, server),
      ring: deps.sessions,
    });
    this.fronts = new ClientSessions(
      route.path,
      {
        sessions: deps.sessions,
        keepAliveMs: deps.keepAliveMs,
        limits: () => deps.bridging(),
        log: this.log,
      },
      {
        create: (pk, ex) => this.open(pk, ex as FederationExchange, shared, false),
        ended: (s) => s.close(),
        count: (n) => deps.federationMetrics()?.federatedSessions(this.path, n),
      },
      { serves: 'as one federated server', limit: 'bridging.maxSessions' },
    );
  }

  /** The same servers, the same settings: a reload keeps the broker and its sessions (reading the new route). */
  keep(route: Route): boolean {
    const key = (r: Route) => JSON.stringify([r.config.servers, r.config.separator, r.config.egress, r.config.tls]);
    if (key(route) !== key(this.route)) return false;
    this.route = route;
    for (const m of this.members) {
      const next = route.members.find((x) => x.name === m.name);
      if (next) m.member = next;
    }
    return true;
  }

  /** Whether `ex` names one of this process's federated sessions. */
  owns(ex: BrokerExchange): boolean {
    return this.fronts.owns(ex);
  }

  get sessions(): number {
    return this.fronts.size;
  }

  handle(ex: FederationExchange): Promise<void> {
    ex.handedOff = true;
    this.policy = ex.route?.guard?.policy;
    const parsed = parsedBody(ex);
    if (ex.era === 'stateless' || hasEnvelope(ex)) return this.serveModern(ex, parsed);
    ex.federatedServer = this.serverOf(parsed);
    ex.brokerUpstream = ex.federatedServer ? `federated server ${ex.federatedServer}` : 'federation';
    // The caller's latest principal (a refreshed token may carry other scopes) decides what lists show.
    if (ex.principal) for (const s of this.fronts.values()) if (s.who?.key === ex.principal.key) s.who = ex.principal;
    return this.fronts.handle(ex, parsed);
  }

  /**
   * A 2026-07-28 caller: served by the modern front (as a bridged 2025 server is), whose upstream
   * sessions are federated sessions in this process (session-pipe.ts), pooled per caller.
   */
  private async serveModern(ex: FederationExchange, parsed: unknown): Promise<void> {
    ex.federatedServer = this.serverOf(parsed);
    ex.brokerUpstream = ex.federatedServer ? `federated server ${ex.federatedServer}` : 'federation';
    if (!this.modern) {
      await this.findAll(undefined, undefined);
      const found: Discovery = {
        era: 'legacy',
        serverInfo: this.serverInfo(),
        capabilities: this.capabilities(),
        instructions: this.instructions(),
        discover: undefined,
      };
      const deps = this.deps;
      this.modern ??= new ModernFront(this.path, (e) => this.pipeFor(e as FederationExchange), found, {
        log: deps.log,
        sessions: deps.sessions,
        keepAliveMs: deps.keepAliveMs,
        limits: deps.bridging(),
        metrics: deps.metrics,
      });
    }
    return this.modern.handle(ex, parsed);
  }

  /** Where the modern front's upstream session for this caller is: a federated session made when it connects. */
  private pipeFor(ex: FederationExchange): UpstreamEndpoint {
    return {
      kind: 'memory',
      open: () =>
        new SessionPipe(async () => {
          const s = await this.open(callerKey(ex), ex, this.shared, true);
          this.detached.add(s);
          s.server.onclose = () => {
            this.detached.delete(s);
            s.close();
          };
          return s.server;
        }),
    };
  }

  /** The server a single request goes to (its target's prefix), for the access log. */
  private serverOf(parsed: unknown): string | undefined {
    const m = parsed as { method?: unknown; params?: Record<string, unknown> } | undefined;
    if (typeof m?.method !== 'string') return undefined;
    try {
      return routeRequest(this.ns, m.method, m.params)?.member.name;
    } catch {
      return undefined;
    }
  }

  private async open(
    pk: string,
    ex: FederationExchange,
    shared: FederationShared,
    pooled: boolean,
  ): Promise<FederatedSession> {
    const credentials = new Map<string, { header: string; value: string } | undefined>();
    await Promise.all(
      this.members.map(async (m) => {
        const own = ex.serverCredential?.(m.name);
        credentials.set(m.name, own ? await own : ex.upstreamCredential);
      }),
    );
    const authorization = ex.upstreamCredential ? undefined : ex.req.headers.authorization;
    const slow = await this.findAll(credentials, authorization);
    const server = new Server(this.serverInfo(), {
      capabilities: this.capabilities() as ServerCapabilities,
      instructions: this.instructions(),
    });
    // A server not found in time was waited for once already: the session's first list does not wait again.
    return new FederatedSession(server, pk, ex.principal, shared, credentials, authorization, { pooled, slow });
  }

  /**
   * The merged capabilities are what the servers found so far declare: those not yet found are
   * asked now, for as long as a list may wait. Returns those still not found.
   */
  private async findAll(
    credentials: ReadonlyMap<string, { header: string; value: string } | undefined> | undefined,
    authorization: string | undefined,
  ): Promise<string[]> {
    const wait = this.deps.federation().listTimeout;
    const late = this.members.filter((m) => !m.known);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(late.map((m) => m.target(credentials?.get(m.name), authorization).discover())),
      new Promise((r) => (timer = setTimeout(r, wait))),
    ]).finally(() => clearTimeout(timer));
    return late.filter((m) => !m.known).map((m) => m.name);
  }

  private serverInfo(): { name: string; version: string; title: string } {
    const names = this.members.map((m) => m.name).join(', ');
    return { name: 'sluice-federation', version: '1', title: `${this.path} (${names})` };
  }

  /** Every server's capabilities, with list_changed declared: the route's own lists change as servers come and go. */
  private capabilities(): Record<string, unknown> {
    const caps: Record<string, Record<string, unknown>> = {
      tools: { listChanged: true },
    };
    for (const m of this.members) {
      const c = m.known?.capabilities ?? { tools: {}, prompts: {}, resources: {} };
      for (const [k, v] of Object.entries(c)) {
        if (typeof v !== 'object' || v === null) continue;
        caps[k] = { ...(caps[k] ?? {}), ...(v as Record<string, unknown>) };
      }
    }
    for (const k of ['tools', 'prompts', 'resources']) if (caps[k]) caps[k] = { ...caps[k], listChanged: true };
    // A 2026-07-28 server's resource updates are subscribed to on its listen stream: 2025 clients subscribe.
    if (caps['resources'] && this.members.some((m) => m.known?.era === 'modern' && m.known.capabilities['resources']))
      caps['resources'] = { ...caps['resources'], subscribe: true };
    return caps;
  }

  private instructions(): string | undefined {
    const parts = this.members.flatMap((m) =>
      m.known?.instructions ? [`${m.name}${m.prefix ? ` (${m.prefix})` : ''}: ${m.known.instructions}`] : [],
    );
    return parts.length ? parts.join('\n\n') : undefined;
  }

  /** Each server's state, for the admin API: what it is, its replicas, and how the sessions' links to it stand. */
  state(): BrokerState {
    return {
      kind: 'federation',
      route: this.path,
      sessions: this.fronts.size + this.detached.size,
      servers: this.members.map((m) => {
        const links = { up: 0, down: 0, connecting: 0 };
        let reason: string | undefined;
        for (const s of [...this.fronts.values(), ...this.detached]) {
          const l = s.links.get(m.name);
          if (!l || l.state === 'closed') continue;
          links[l.state]++;
          if (l.state === 'down') reason = l.reason;
        }
        return { ...m.state(), links, ...(reason ? { lastError: reason } : {}) };
      }),
    };
  }

  async close(_reason: BrokerCloseReason, _deadline: number): Promise<void> {
    this.fronts.close();
    await this.modern?.close();
    for (const s of this.detached) s.close();
    await Promise.all(this.members.map((m) => m.close()));
  }
}
