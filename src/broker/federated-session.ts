// One client's session of a federated route: the SDK v2 Server its client talks to, and a link
// to each server (member-link.ts). A request that names its target (a tool, prompt, resource or
// task) goes to that server in its own names and the answer comes back in the client's; a list is
// asked of every server at once and merged, answering after `federation.listTimeout` with the
// servers that answered. A server that was too slow is not waited for again: it is asked in the
// background, its last first page (kept until it announces a change, at most `federation.listCache`)
// stands in for it, and its entries come back with a list_changed, so one slow server costs one
// wait. Every upstream request ends with the client's request or at its deadline. Merged cursors
// are sealed to the session and caller. Requests from a server to the client (sampling,
// elicitation, roots) ride the stream of a call in flight to that same server, else the client's
// GET stream (a 2026-07-28 caller has none: refused); their answers go back to the asking server;
// ids and progress tokens are the SDK's own on each side, so they never collide. List changes are
// told at most once per kind per window (notice-coalescer.ts).
import { randomUUID } from 'node:crypto';
import {
  ProtocolError,
  type JSONRPCRequest,
  type Result,
  type Server,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { Principal } from '../security/principal.ts';
import type { ToolPolicy } from '../security/tool-policy.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { hashPrincipal } from '../session/token.ts';
import { ANY_RESULT, isAnonymous, relayProgress } from './bridge-common.ts';
import type { ClientSession } from './client-sessions.ts';
import {
  MEMBER_CURSOR,
  openCursor,
  sealCursor,
  type CursorBinding,
  type Namespace,
  type SpanCursor,
} from './federation-names.ts';
import { clientNotification, clientResult, LISTS, routeRequest } from './federation-rewrite.ts';
import { MemberLink, type LinkTarget, type LinkTimes } from './member-link.ts';
import { Coalescer } from './notice-coalescer.ts';
import type { CallerIdentity, Discovery } from './upstream-link.ts';

type Obj = Record<string, unknown>;
/** A request's context as the SDK's server gives it to a handler. */
export type Ctx = ServerContext;
/** A client request as the SDK's fallback handler gets it. */
export type Req = JSONRPCRequest;

/** A server of the route as every session sees it (federation-broker.ts). */
export interface FederatedMember {
  readonly name: string;
  readonly prefix: string;
  /** Its era and capabilities once found (undefined before, or while it cannot be asked). */
  readonly known: Discovery | undefined;
  /** How a session's link reaches it, with the credential that session's client gets there. */
  target(
    credential: { header: string; value: string } | undefined,
    authorization: string | undefined,
    /** The session's caller (bridge-common callerKey): a stdio server's processes count against its share. */
    caller?: string,
  ): LinkTarget;
}

export interface FederationShared {
  readonly route: string;
  readonly ns: Namespace<FederatedMember>;
  readonly log: Logger;
  times(): LinkTimes & { listTimeout: number; listCache: number };
  /** The route's policy now (a reload may change it); undefined: everything may be listed. */
  policy(): ToolPolicy | undefined;
  listTimedOut(server: string, method: string): void;
  requested(server: string): void;
  /** The session key ring: merged cursors are sealed with it. */
  ring(): KeyRing;
}

const CHANGED: Readonly<Record<string, string>> = {
  'tools/list': 'notifications/tools/list_changed',
  'prompts/list': 'notifications/prompts/list_changed',
  'resources/list': 'notifications/resources/list_changed',
  'resources/templates/list': 'notifications/resources/list_changed',
};

/** The lists a server's list_changed makes stale. */
const STALE: Readonly<Record<string, readonly string[]>> = {
  'notifications/tools/list_changed': ['tools/list'],
  'notifications/prompts/list_changed': ['prompts/list'],
  'notifications/resources/list_changed': ['resources/list', 'resources/templates/list'],
};

/** Which capability a list belongs to (a server without it is not asked). */
const FAMILY: Readonly<Record<string, string>> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
  'tasks/list': 'tasks',
};

/** A list asked in the background (a slow server's) may take at least this many list timeouts. */
const BACKGROUND_WAITS = 4;

interface InFlight {
  member: string;
  ctx: Ctx;
}

/** One server's part of a merged list: its page (in the client's names), or why there is none. */
interface Part {
  page?: Obj;
  error?: Error;
}

export interface SessionOptions {
  /** A 2026-07-28 caller's session (pooled by the modern front): no GET stream, cursors bound to the caller alone. */
  pooled: boolean;
  /** Servers not found within the list timeout when the session opened: its first list does not wait for them. */
  slow?: readonly string[];
}

export class FederatedSession implements ClientSession {
  readonly server: Server;
  readonly principal: string;
  transport: ClientSession['transport'];
  active = 0;
  lastActivity = Date.now();
  over = false;
  /** Who is asking now (its scopes decide what lists show); the session's caller key never changes. */
  who: Principal | undefined;
  readonly links = new Map<string, MemberLink>();
  private readonly fed: FederationShared;
  private readonly inFlight = new Set<InFlight>();
  private readonly pooled: boolean;
  private readonly cursors: CursorBinding;
  private readonly notices = new Coalescer();
  /** Each server's first page of each list, in the client's names, until it announces a change. */
  private readonly kept = new Map<string, { page: Obj; at: number }>();
  /** Lists a server did not answer in time: not waited for until it answers one. */
  private readonly slow = new Set<string>();
  /**
   * Lists being asked in the background (one at a time per server and list), and whether the
   * server announced a change of it meanwhile (told once, with the answer, not twice).
   */
  private readonly refreshing = new Map<string, { announced: boolean }>();
  private readonly ended = new AbortController();
  /** Whether the client's GET stream is open, and requests waiting for it to open. */
  private standalone = false;
  private readonly awaitingStream = new Set<() => void>();

  constructor(
    server: Server,
    principal: string,
    who: Principal | undefined,
    fed: FederationShared,
    credentials: ReadonlyMap<string, { header: string; value: string } | undefined>,
    authorization: string | undefined,
    opts: SessionOptions,
  ) {
    this.server = server;
    this.principal = principal;
    this.who = who;
    this.fed = fed;
    this.pooled = opts.pooled;
    this.cursors = {
      ring: fed.ring,
      route: fed.route,
      session: opts.pooled ? 'pooled' : randomUUID(),
      caller: isAnonymous(principal) ? undefined : hashPrincipal(principal),
    };
    for (const name of opts.slow ?? []) for (const method of Object.keys(LISTS)) this.slow.add(`${name} ${method}`);
    const identity = (): CallerIdentity => ({
      info: (server.getClientVersion() ?? { name: 'unknown-client', version: '0' }) as CallerIdentity['info'],
      capabilities: (server.getClientCapabilities() ?? {}) as Obj,
    });
    for (const m of fed.ns.members) {
      const link = new MemberLink(
        m.target(credentials.get(m.name), authorization, principal),
        identity,
        {
          request: (method, params, signal) => this.ask(m, method, params, signal),
          notification: (method, params) => this.hear(m, method, params),
          recovered: () => this.announce(m),
        },
        fed.times(),
        fed.log.child({ server: m.name }),
      );
      this.links.set(m.name, link);
    }
    server.removeRequestHandler('logging/setLevel');
    server.fallbackRequestHandler = (req, ctx) => this.dispatch(req, ctx) as Promise<Result>;
    // Every server is connected once the client is: list changes and subscriptions need the link.
    server.oninitialized = () => {
      for (const link of this.links.values()) void link.ready().catch(() => undefined);
    };
  }

  private async dispatch(req: Req, ctx: Ctx): Promise<unknown> {
    this.lastActivity = Date.now();
    if (LISTS[req.method]) return this.list(req.method, req.params, ctx);
    if (req.method === 'logging/setLevel') return this.setLevel(req.params);
    const routed = routeRequest(this.fed.ns, req.method, req.params);
    const only = this.fed.ns.members.length === 1 ? this.fed.ns.members[0] : undefined;
    if (!routed && !only) throw new ProtocolError(-32601, `Method not found: ${req.method}`);
    const member = routed?.member ?? (only as FederatedMember);
    return this.call(member, req.method, routed ? routed.params : req.params, ctx);
  }

  private async call(m: FederatedMember, method: string, params: Obj | undefined, ctx: Ctx): Promise<unknown> {
    const link = this.links.get(m.name) as MemberLink;
    const entry = { member: m.name, ctx };
    this.inFlight.add(entry);
    this.fed.requested(m.name);
    const progress = relayProgress(ctx.mcpReq._meta?.['progressToken'], (n) => ctx.mcpReq.notify(n));
    try {
      const result = await link.request(method, params, { signal: ctx.mcpReq.signal, onprogress: progress.onprogress });
      await progress.sent();
      return clientResult(this.fed.ns, m, method, result);
    } finally {
      this.inFlight.delete(entry);
    }
  }

  /** A merged list: every server asked at once (or those the cursor names), answered within the list timeout. */
  private async list(method: string, params: Obj | undefined, ctx: Ctx): Promise<unknown> {
    const spec = LISTS[method] as { key: string; field: string; kind: 'name' | 'uri' };
    const members = this.fed.ns.members;
    const span = openCursor(
      this.cursors,
      params?.['cursor'],
      members.map((m) => m.name),
    );
    const asks: [FederatedMember, string | undefined][] = span
      ? span.map(([name, c]) => [members.find((x) => x.name === name) as FederatedMember, c])
      : members.filter((m) => offers(m, method)).map((m) => [m, undefined]);
    const parts = await Promise.all(asks.map(([m, c]) => this.part(m, method, c, ctx)));
    const failed = parts.find((p) => p.error)?.error;
    if (failed && !parts.some((p) => p.page)) throw failed;
    const items: unknown[] = [];
    const rest: SpanCursor = [];
    parts.forEach(({ page }, i) => {
      const m = (asks[i] as [FederatedMember, unknown])[0];
      if (!page) return;
      for (const e of (page[spec.key] as unknown[] | undefined) ?? []) {
        const name = (e as Obj | undefined)?.[spec.field];
        if (typeof name === 'string' && this.fed.ns.shadowed(m, name, spec.kind)) continue;
        items.push(e);
      }
      const more = page['nextCursor'];
      if (typeof more !== 'string') return;
      if (Buffer.byteLength(more) <= MEMBER_CURSOR) rest.push([m.name, more]);
      else
        this.fed.log.warn(
          { server: m.name, method, bytes: Buffer.byteLength(more) },
          `federated list: the server's cursor is longer than ${MEMBER_CURSOR} bytes; its further pages are not offered`,
        );
    });
    const next = sealCursor(this.cursors, rest);
    const merged: Obj = { [spec.key]: items, ...(next ? { nextCursor: next } : {}) };
    return this.fed.policy()?.filterResult(merged, this.who) ?? merged;
  }

  /**
   * One server's page, asked now and abandoned upstream when the client's request ends or the
   * list timeout passes. A server that let the timeout pass is not waited for again until it
   * answers: it is asked in the background (its entries follow with a list_changed) and its last
   * page stands in for it meanwhile, while it is known to be current.
   */
  private async part(m: FederatedMember, method: string, cursor: string | undefined, ctx: Ctx): Promise<Part> {
    const link = this.links.get(m.name) as MemberLink;
    const key = `${m.name} ${method}`;
    const stand = (): Part => {
      const kept = cursor === undefined ? this.keptPage(m, method, key) : undefined;
      return kept ? { page: kept } : {};
    };
    if (cursor === undefined && this.slow.has(key)) {
      this.refresh(m, method, key);
      return stand();
    }
    // A server known to be down is not waited for: its return is announced with a list_changed.
    if (link.state === 'down') return {};
    const timeout = this.fed.times().listTimeout;
    const deadline = AbortSignal.timeout(timeout);
    try {
      const raw = await link.request(method, cursor === undefined ? undefined : { cursor }, {
        signal: AbortSignal.any([ctx.mcpReq.signal, deadline, this.ended.signal]),
      });
      const page = clientResult(this.fed.ns, m, method, raw) as Obj;
      if (cursor === undefined) this.keep(m, method, key, page);
      return { page };
    } catch (err) {
      if (ctx.mcpReq.signal.aborted || this.over) return {};
      if (deadline.aborted) {
        this.fed.listTimedOut(m.name, method);
        this.fed.log.warn(
          { server: m.name, method, timeoutMs: timeout },
          'federated list answered without a slow server (federation.listTimeout); it is asked in the background',
        );
        if (cursor === undefined) {
          this.slow.add(key);
          this.refresh(m, method, key);
        }
        return stand();
      }
      this.fed.log.warn({ server: m.name, method, err: (err as Error).message }, 'federated list: a server failed');
      return { error: err as Error };
    }
  }

  /** A slow server's list, asked once at a time in the background; its answer is told with a list_changed. */
  private refresh(m: FederatedMember, method: string, key: string): void {
    const link = this.links.get(m.name) as MemberLink;
    if (this.refreshing.has(key) || this.over || link.state === 'down') return;
    const pending = { announced: false };
    this.refreshing.set(key, pending);
    // Given the time a server may take to start (federation.connectTimeout), at least a few list timeouts.
    const t = this.fed.times();
    const wait = Math.max(t.listTimeout * BACKGROUND_WAITS, t.connectTimeout);
    link
      .request(method, undefined, { signal: AbortSignal.any([AbortSignal.timeout(wait), this.ended.signal]) })
      .then(
        (raw) => {
          if (this.over) return;
          this.slow.delete(key);
          this.keep(m, method, key, clientResult(this.fed.ns, m, method, raw) as Obj);
          this.changed(method);
        },
        (err: Error) => {
          this.fed.log.debug({ server: m.name, method, err: err.message }, 'federated list: still no answer');
          if (pending.announced && !this.over) this.changed(method);
        },
      )
      .finally(() => this.refreshing.delete(key));
  }

  /** A server's first page is kept while its list changes reach the session (it says when it is stale). */
  private keep(m: FederatedMember, method: string, key: string, page: Obj): void {
    if (this.fed.times().listCache > 0 && this.announcesChanges(m, method))
      this.kept.set(key, { page, at: Date.now() });
  }

  private keptPage(m: FederatedMember, method: string, key: string): Obj | undefined {
    const kept = this.kept.get(key);
    if (!kept) return undefined;
    if (Date.now() - kept.at < this.fed.times().listCache && this.announcesChanges(m, method)) return kept.page;
    this.kept.delete(key);
    return undefined;
  }

  private announcesChanges(m: FederatedMember, method: string): boolean {
    const family = FAMILY[method];
    const caps = family ? (m.known?.capabilities[family] as { listChanged?: unknown } | undefined) : undefined;
    return caps?.listChanged === true && (this.links.get(m.name) as MemberLink).hearsChanges;
  }

  private async setLevel(params: Obj | undefined): Promise<unknown> {
    const timeout = this.fed.times().listTimeout;
    const aborted = AbortSignal.timeout(timeout);
    await Promise.allSettled(
      this.fed.ns.members
        .filter((m) => m.known?.capabilities['logging'] !== undefined)
        .map((m) => (this.links.get(m.name) as MemberLink).request('logging/setLevel', params, { signal: aborted })),
    );
    return {};
  }

  /**
   * A server's request to the client: on the stream of a call in flight to that server, else on
   * the client's GET stream — never inside a call to another server (a password prompt from one
   * server must not appear in a call to another). A 2026-07-28 caller is asked only during a call.
   */
  private ask(m: FederatedMember, method: string, params: Obj | undefined, signal: AbortSignal): Promise<unknown> {
    const via = this.ownCall(m);
    const req = { method, ...(params ? { params } : {}) };
    if (via) return via.mcpReq.send(req, ANY_RESULT, { signal });
    if (this.pooled)
      return Promise.reject(
        new ProtocolError(
          -32603,
          `${method} outside a call cannot reach a 2026-07-28 client (it is asked only during a call to this server)`,
        ),
      );
    // The SDK's transport drops what has no stream: a request waits (as long as the server lets
    // it) for the client to open its GET stream.
    return this.streamOpen(signal).then(() => this.server.request(req, ANY_RESULT, { signal }));
  }

  private streamOpen(signal: AbortSignal): Promise<void> {
    // An HTTP+SSE client's one stream is open from the start.
    if (this.standalone || (this.transport !== undefined && !('handleRequest' in this.transport)))
      return Promise.resolve();
    return new Promise((resolve, reject) => {
      const opened = (): void => {
        signal.removeEventListener('abort', gone);
        resolve();
      };
      const gone = (): void => {
        this.awaitingStream.delete(opened);
        reject(signal.reason as Error);
      };
      this.awaitingStream.add(opened);
      signal.addEventListener('abort', gone, { once: true });
    });
  }

  standaloneOpened(): void {
    this.standalone = true;
    const waiting = [...this.awaitingStream];
    this.awaitingStream.clear();
    for (const go of waiting) go();
  }

  standaloneClosed(): void {
    this.standalone = false;
  }

  private ownCall(m: FederatedMember): Ctx | undefined {
    let own: Ctx | undefined;
    for (const f of this.inFlight) if (f.member === m.name) own = f.ctx;
    return own;
  }

  private hear(m: FederatedMember, method: string, params: Obj | undefined): void {
    if (this.over) return;
    const stale = STALE[method];
    let told = false;
    for (const list of stale ?? []) {
      this.kept.delete(`${m.name} ${list}`);
      const pending = this.refreshing.get(`${m.name} ${list}`);
      if (pending) told = pending.announced = true;
    }
    // A list being asked in the background is told with its answer.
    if (told) return;
    const p = clientNotification(this.fed.ns, m, method, params);
    const n = { method, ...(p ? { params: p } : {}) };
    const tell = (): void => void this.server.notification(n).catch(() => undefined);
    if (method === 'notifications/message') {
      const via = this.ownCall(m);
      void (via ? via.mcpReq.notify(n) : this.server.notification(n)).catch(() => undefined);
    } else if (stale) this.notices.send(method, tell);
    else if (method === 'notifications/resources/updated') this.notices.send(`${method} ${String(p?.['uri'])}`, tell);
    else tell();
  }

  /** A server is back: every list it offers may have changed. */
  private announce(m: FederatedMember): void {
    if (this.over) return;
    for (const key of [...this.kept.keys()]) if (key.startsWith(`${m.name} `)) this.kept.delete(key);
    for (const method of ['tools/list', 'prompts/list', 'resources/list']) if (offers(m, method)) this.changed(method);
  }

  private changed(method: string): void {
    const n = CHANGED[method];
    if (n) this.notices.send(n, () => void this.server.notification({ method: n }).catch(() => undefined));
  }

  close(): void {
    this.ended.abort();
    this.notices.close();
    for (const link of this.links.values()) void link.close();
  }
}

function offers(m: FederatedMember, method: string): boolean {
  const family = FAMILY[method];
  // A server not yet found may have anything: it is asked.
  return !m.known || family === undefined || m.known.capabilities[family] !== undefined;
}
