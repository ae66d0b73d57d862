// One client's session of a federated route: the SDK v2 Server its client talks to, and a link
// to each server (member-link.ts). A request that names its target (a tool, prompt, resource or
// task) goes to that server in its own names and the answer comes back in the client's; a list is
// asked of every server at once and merged, answering after `federation.listTimeout` with the
// servers that answered (a late one's entries come back with a list_changed). Requests from a
// server to the client (sampling, elicitation, roots) ride the stream of a call in flight to that
// server when there is one, and their answers go back to the asking server; ids and progress
// tokens are the SDK's own on each side, so they never collide.
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
import { ANY_RESULT, relayProgress } from './bridge-common.ts';
import type { ClientSession } from './client-sessions.ts';
import { decodeCursor, encodeCursor, type Namespace, type SpanCursor } from './federation-names.ts';
import { clientNotification, clientResult, LISTS, routeRequest } from './federation-rewrite.ts';
import { MemberLink, type LinkTarget, type LinkTimes } from './member-link.ts';
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
  times(): LinkTimes & { listTimeout: number };
  /** The route's policy now (a reload may change it); undefined: everything may be listed. */
  policy(): ToolPolicy | undefined;
  listTimedOut(server: string, method: string): void;
  requested(server: string): void;
}

const CHANGED: Readonly<Record<string, string>> = {
  'tools/list': 'notifications/tools/list_changed',
  'prompts/list': 'notifications/prompts/list_changed',
  'resources/list': 'notifications/resources/list_changed',
  'resources/templates/list': 'notifications/resources/list_changed',
};

/** Which capability a list belongs to (a server without it is not asked). */
const FAMILY: Readonly<Record<string, string>> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
  'tasks/list': 'tasks',
};

interface InFlight {
  member: string;
  ctx: Ctx;
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

  constructor(
    server: Server,
    principal: string,
    who: Principal | undefined,
    fed: FederationShared,
    credentials: ReadonlyMap<string, { header: string; value: string } | undefined>,
    authorization: string | undefined,
  ) {
    this.server = server;
    this.principal = principal;
    this.who = who;
    this.fed = fed;
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
    const span = decodeCursor(params?.['cursor']);
    const asks: [FederatedMember, string | undefined][] = span
      ? span.map(([name, c]) => {
          const m = this.fed.ns.members.find((x) => x.name === name);
          if (!m) throw new ProtocolError(-32602, 'Invalid cursor');
          return [m, c];
        })
      : this.fed.ns.members.filter((m) => offers(m, method)).map((m) => [m, undefined]);
    const timeout = this.fed.times().listTimeout;
    const pages = await Promise.all(asks.map(([m, c]) => this.page(m, method, c, ctx, timeout)));
    const items: unknown[] = [];
    const rest: SpanCursor = [];
    pages.forEach((page, i) => {
      const m = (asks[i] as [FederatedMember, unknown])[0];
      if (!page) return;
      const mapped = clientResult(this.fed.ns, m, method, page) as Obj;
      for (const e of (mapped[spec.key] as unknown[] | undefined) ?? []) {
        const name = (e as Obj | undefined)?.[spec.field];
        if (typeof name === 'string' && this.fed.ns.shadowed(m, name, spec.kind)) continue;
        items.push(e);
      }
      if (typeof page['nextCursor'] === 'string') rest.push([m.name, page['nextCursor']]);
    });
    const next = encodeCursor(rest);
    const merged: Obj = { [spec.key]: items, ...(next ? { nextCursor: next } : {}) };
    return this.fed.policy()?.filterResult(merged, this.who) ?? merged;
  }

  private page(
    m: FederatedMember,
    method: string,
    cursor: string | undefined,
    ctx: Ctx,
    timeout: number,
  ): Promise<Obj | undefined> {
    const link = this.links.get(m.name) as MemberLink;
    // A server known to be down is not waited for: its return is announced with a list_changed.
    if (link.state === 'down') return Promise.resolve(undefined);
    let late = false;
    const asked = link
      .request(method, cursor === undefined ? undefined : { cursor }, { signal: ctx.mcpReq.signal })
      .then(
        (r) => {
          if (late && !this.over) this.changed(method);
          return r as Obj;
        },
        (err: Error) => {
          if (!ctx.mcpReq.signal.aborted)
            this.fed.log.warn({ server: m.name, method, err: err.message }, 'federated list: a server failed');
          return undefined;
        },
      );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        late = true;
        this.fed.listTimedOut(m.name, method);
        this.fed.log.warn(
          { server: m.name, method, timeoutMs: timeout },
          'federated list answered without a slow server (federation.listTimeout)',
        );
        resolve(undefined);
      }, timeout);
    });
    return Promise.race([asked, waited]).finally(() => clearTimeout(timer));
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

  /** A server's request to the client: on the stream of a call in flight to that server, else of any, else on GET. */
  private ask(m: FederatedMember, method: string, params: Obj | undefined, signal: AbortSignal): Promise<unknown> {
    const via = this.carrier(m);
    const req = { method, ...(params ? { params } : {}) };
    if (via) return via.mcpReq.send(req, ANY_RESULT, { signal });
    return this.server.request(req, ANY_RESULT, { signal });
  }

  private carrier(m: FederatedMember): Ctx | undefined {
    let any: Ctx | undefined;
    let own: Ctx | undefined;
    for (const f of this.inFlight) {
      any = f.ctx;
      if (f.member === m.name) own = f.ctx;
    }
    return own ?? any;
  }

  private hear(m: FederatedMember, method: string, params: Obj | undefined): void {
    if (this.over) return;
    const p = clientNotification(this.fed.ns, m, method, params);
    const n = { method, ...(p ? { params: p } : {}) };
    const via = method === 'notifications/message' ? this.carrier(m) : undefined;
    const sent = via ? via.mcpReq.notify(n) : this.server.notification(n);
    void sent.catch(() => undefined);
  }

  /** A server is back: every list it offers may have changed. */
  private announce(m: FederatedMember): void {
    if (this.over) return;
    for (const method of ['tools/list', 'prompts/list', 'resources/list']) if (offers(m, method)) this.changed(method);
  }

  private changed(method: string): void {
    const n = CHANGED[method];
    if (n) void this.server.notification({ method: n }).catch(() => undefined);
  }

  close(): void {
    for (const link of this.links.values()) void link.close();
  }
}

function offers(m: FederatedMember, method: string): boolean {
  const family = FAMILY[method];
  // A server not yet found may have anything: it is asked.
  return !m.known || family === undefined || m.known.capabilities[family] !== undefined;
}
