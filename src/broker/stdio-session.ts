// One client session on a stdio route: an official SDK server transport on the client's side (the
// v2 Streamable HTTP one: sessions, POST/GET/DELETE, SSE and JSON answers, Last-Event-ID resume
// from the session's own event buffer; or v1's HTTP+SSE one, one stream per session) and one
// supervised child on the other. One child per session, so
// JSON-RPC ids pass unchanged both ways; what Sluice adds is which stream a child's message takes:
// an answer goes where its request came from (the transport knows), a progress notification to
// the request that named its token, a request or log line the child sends mid-call to the call in
// flight (the newest, when several are), and everything else (list changes) to the GET stream.
// A child that speaks before the client has opened its GET stream (server-filesystem asks
// roots/list right after notifications/initialized) is heard once the stream opens: the SDK's
// transport would drop what has no stream, where a client on stdio would have read it.
import type { JSONRPCMessage, RequestId, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import type { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import type { StdioConfig } from '../config/schema.ts';
import { SluiceError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ClientSession } from './client-sessions.ts';
import type { Slot } from './process-slots.ts';
import { StdioChild, type ExitCause } from './stdio-child.ts';

type Msg = Record<string, unknown>;

export interface SessionEnd {
  cause: ExitCause | 'deleted' | 'idle' | 'shutdown' | 'route-removed';
  detail: string;
}

/** The client's side of a session: what the SDK server transports (v2 Streamable HTTP, v1 HTTP+SSE) have in common. */
export interface ClientSide {
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  send(message: JSONRPCMessage, options?: { relatedRequestId?: RequestId }): Promise<void>;
  close(): Promise<void>;
}

export interface StdioSessionOptions {
  /** The caller it belongs to (bridge-common callerKey). */
  principal: string;
  log: Logger;
  maxLine: number;
  /** Its child's place in the route's process count (released once the child is reaped). */
  slot: Slot;
  /** Called once, when the session is over for any reason (its child is stopping or gone). */
  onEnd(end: SessionEnd): void;
}

/** Messages kept for a GET stream not yet open (a server's first words; more is a client that never opens one). */
const HELD_MAX = 64;

const key = (id: unknown): string => (typeof id === 'number' ? `n${id}` : `s${String(id)}`);

export class StdioSession implements ClientSession {
  readonly principal: string;
  /** The SDK server transport the keeper (client-sessions.ts) made for it. */
  transport: WebStandardStreamableHTTPServerTransport | SSEServerTransport | undefined;
  /** Set by the keeper once the session is over for it. */
  over = false;
  /** The client's side, once attached: what the child's messages are sent on. */
  private client: ClientSide | undefined;
  readonly child: StdioChild;
  /** HTTP exchanges of this session in progress (POSTs answering, GET streams open). */
  active = 0;
  lastActivity = Date.now();
  private ended = false;
  /** A sender is handing the child a message while it is slow to read (whenChildReads); the others wait in turn. */
  private sending = false;
  private readonly turns: (() => void)[] = [];
  /** Why it ended, in plain words (set when it does). */
  endDetail = '';
  private readonly opts: StdioSessionOptions;
  /** Client requests the child has not answered: id key → id, newest last. */
  private readonly inFlight = new Map<string, RequestId>();
  /** Progress tokens named by client requests → the request. */
  private readonly progress = new Map<string, RequestId>();
  /** Requests the child sent the client, and the client request they were sent with. */
  private readonly childRequests = new Map<string, RequestId | undefined>();
  /** Whether the client's GET stream is open (a Streamable HTTP client's; an HTTP+SSE one always has its stream). */
  private standalone = false;
  /** What the child sent outside any call before the GET stream opened, oldest first (at most HELD_MAX). */
  private held: JSONRPCMessage[] = [];

  /** Spawns the child; the client's side is attached once the keeper has made it (`attach`). */
  constructor(cfg: StdioConfig, opts: StdioSessionOptions) {
    this.opts = opts;
    this.principal = opts.principal;
    this.child = new StdioChild(cfg, {
      log: opts.log,
      maxLine: opts.maxLine,
      slot: opts.slot,
      events: {
        message: (m) => this.fromChild(m),
        exit: (cause, detail) => this.end({ cause, detail }),
      },
    });
  }

  /** The client's side: what it sends goes to the child, what the child sends goes out on it. */
  async attach(client: ClientSide & { start(): Promise<void> }): Promise<void> {
    this.client = client;
    client.onmessage = (m) => this.fromClient(m as Msg);
    await client.start();
  }

  /**
   * Runs `deliver` (which hands the client's message to the child) once the child's stdin has
   * room. Behind a child that stopped reading, senders wait their turn one at a time, `waitMs` at
   * most from their arrival, then get 503: Sluice never queues what the child does not read.
   */
  async whenChildReads<T>(waitMs: number, deliver: () => Promise<T>): Promise<T> {
    if (!this.sending && this.child.hasRoom) return deliver();
    const deadline = Date.now() + waitMs;
    const busy = (): SluiceError =>
      new SluiceError('SLUICE_ERR_UPSTREAM_BUSY', `it has not read its input for ${waitMs} ms (stdio.stdinWait)`, {
        headers: { 'retry-after': '1' },
      });
    if (this.sending) {
      const turn = await new Promise<boolean>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          this.turns.splice(this.turns.indexOf(wake), 1);
          resolve(false);
        }, waitMs);
        this.turns.push(wake);
      });
      if (!turn) throw busy();
    } else this.sending = true;
    try {
      if (!(await this.child.room(Math.max(0, deadline - Date.now())))) throw busy();
      return await deliver();
    } finally {
      const next = this.turns.shift();
      if (next) next();
      else this.sending = false;
    }
  }

  /**
   * End the session: its child is stopped (the group), calls still waiting for it are answered
   * with a JSON-RPC error saying why (a client never waits on an answer that cannot come), and
   * its streams close.
   */
  end(end: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.endDetail = end.detail;
    this.child.stop('stopped', end.detail);
    const waiting = [...this.inFlight.values()];
    this.inFlight.clear();
    const message = `the stdio server ${end.cause === 'spawn-failed' ? 'could not be started' : 'is gone'}: ${end.detail}`;
    void Promise.allSettled(
      waiting.map((id) =>
        this.client?.send(
          { jsonrpc: '2.0', id, error: { code: -32603, message } },
          {
            relatedRequestId: id,
          },
        ),
      ),
    ).then(() => this.client?.close().catch(() => undefined));
    this.opts.onEnd(end);
  }

  /**
   * The client's request `id` reached its deadline (timeouts.request): the child is told to stop
   * (notifications/cancelled) and, when the answer's stream is already open, the client gets the
   * gateway's error on it. Before any byte the hand-off answers 504 itself (`answered`).
   */
  expire(id: RequestId, answered: boolean): void {
    if (!this.inFlight.delete(key(id))) return;
    this.child.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: id, reason: 'the gateway request time limit was reached (timeouts.request)' },
    });
    if (answered) return;
    const e = new SluiceError('SLUICE_ERR_UPSTREAM_TIMEOUT', 'request time limit reached (timeouts.request)');
    this.client
      ?.send(
        { jsonrpc: '2.0', id, error: { code: e.rpcCode, message: e.message, data: { sluice: e.code } } },
        { relatedRequestId: id },
      )
      .catch(() => undefined);
  }

  private fromClient(m: Msg): void {
    this.lastActivity = Date.now();
    const id = m['id'];
    const method = m['method'];
    if (typeof method === 'string' && id !== undefined && id !== null) {
      this.inFlight.delete(key(id));
      this.inFlight.set(key(id), id as RequestId);
      const params = m['params'] as { _meta?: { progressToken?: unknown } } | undefined;
      const token = params?._meta?.progressToken;
      if (token !== undefined) this.progress.set(key(token), id as RequestId);
    } else if (method === undefined && id !== undefined) {
      this.childRequests.delete(key(id));
    }
    if (!this.child.send(m)) this.opts.log.debug('broker: message for a child that is gone');
  }

  private fromChild(m: Msg): void {
    this.lastActivity = Date.now();
    const id = m['id'];
    const method = m['method'];
    let related: RequestId | undefined;
    if (method === undefined) {
      // An answer: the transport sends it on the stream its request came in on.
      this.inFlight.delete(key(id));
      for (const [t, r] of this.progress) if (key(r) === key(id)) this.progress.delete(t);
    } else if (method === 'notifications/progress') {
      related = this.progress.get(key((m['params'] as { progressToken?: unknown } | undefined)?.progressToken));
    } else if (id !== undefined || method === 'notifications/message' || method === 'notifications/cancelled') {
      related = this.newestInFlight();
      if (id !== undefined) this.childRequests.set(key(id), related);
    }
    void this.send(m, related);
  }

  /** An HTTP+SSE client: its one stream is open from the start. */
  private isSse(): boolean {
    return this.transport !== undefined && !('handleRequest' in this.transport);
  }

  private newestInFlight(): RequestId | undefined {
    let last: RequestId | undefined;
    for (const id of this.inFlight.values()) last = id;
    return last;
  }

  /** The client's GET stream opened: what waited for it goes out, in order. */
  standaloneOpened(): void {
    this.standalone = true;
    const held = this.held;
    this.held = [];
    for (const msg of held)
      void this.client
        ?.send(msg)
        .catch((e: unknown) => this.opts.log.debug({ err: (e as Error).message }, 'broker: not delivered'));
  }

  standaloneClosed(): void {
    this.standalone = false;
  }

  private async send(m: Msg, related: RequestId | undefined): Promise<void> {
    // The child's line passed isJsonRpcMessage (stdio-child.ts): it is a JSON-RPC message.
    const msg = m as unknown as JSONRPCMessage;
    if (related === undefined && 'method' in msg && !this.standalone && !this.isSse()) {
      if (this.held.length < HELD_MAX) this.held.push(msg);
      else this.opts.log.warn({ held: HELD_MAX }, 'broker: the client has no GET stream open; a message was dropped');
      return;
    }
    try {
      await this.client?.send(msg, related === undefined ? undefined : { relatedRequestId: related });
    } catch (err) {
      // The request's stream is gone (the client left it): the GET stream, if any, still hears it.
      if (related === undefined) return this.opts.log.debug({ err: (err as Error).message }, 'broker: not delivered');
      await this.client
        ?.send(msg)
        .catch((e: unknown) => this.opts.log.debug({ err: (e as Error).message }, 'broker: not delivered'));
    }
  }
}
