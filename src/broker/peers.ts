// Workers of one Sluice (`serve --workers N`) share the public listeners, so a request of a broker
// session (a stdio child, a bridged or federated session: state that lives in one process) may
// reach a worker that does not hold it. Each worker also listens on a private Unix socket; the
// session token names the owning process (PROCESS), and the worker that got the request hands it,
// as it came, to the owner's socket and passes the answer back, streams included. A 2026-07-28
// call's next round (its sealed requestState names the process holding the parked call) is handed
// the same way. An HTTP+SSE
// session id names no process: the other workers are asked in turn until one has it. A request
// that arrived on a private socket is never handed on again.
import type { Socket } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { SluiceError } from '../core/errors.ts';
import { H } from '../core/mcp.ts';
import { hopByHopNames } from '../security/hop-by-hop.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { hashPrincipal, open } from '../session/token.ts';
import { callerKey, isAnonymous, PROCESS } from './bridge-common.ts';
import { parsedBody } from './web-exchange.ts';
import type { BrokerExchange, RouteBroker } from '../core/route-broker.ts';

const SDK_SSE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Peers {
  /** The other workers: process name → private socket path. */
  private byProcess = new Map<string, string>();
  private readonly agents = new Map<string, Agent>();
  /** Connections that came in on this worker's private socket. */
  readonly internal = new WeakSet<Socket>();
  private readonly keys: () => KeyRing;

  constructor(keys: () => KeyRing) {
    this.keys = keys;
  }

  /** The workers as the primary announced them (this one included, and left out here). */
  set(all: Record<string, string>): void {
    this.byProcess = new Map(Object.entries(all).filter(([p]) => p !== PROCESS));
    for (const [socket, agent] of this.agents)
      if (![...this.byProcess.values()].includes(socket)) {
        void agent.close();
        this.agents.delete(socket);
      }
  }

  /**
   * `broker`, handing a request of another worker's session to that worker: a RouteBroker
   * around a RouteBroker, as an undici interceptor wraps a dispatcher.
   */
  wrap(broker: RouteBroker): RouteBroker {
    return {
      kind: broker.kind,
      handle: (ex) => {
        const to = this.elsewhere(ex, broker);
        return to.length > 0 ? this.relay(ex, to) : broker.handle(ex);
      },
      owns: (ex) => broker.owns(ex),
      state: () => broker.state(),
      close: (reason, deadline) => broker.close(reason, deadline),
    };
  }

  /** The sockets to try for a session this worker does not hold ([]: serve it here). */
  private elsewhere(ex: BrokerExchange, broker: RouteBroker): string[] {
    if (this.byProcess.size === 0 || this.internal.has(ex.req.socket) || broker.owns(ex)) return [];
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    if (token !== undefined) {
      const claims = open(this.keys(), 'session', token);
      const socket = claims ? this.byProcess.get(claims.replica) : undefined;
      return socket ? [socket] : [];
    }
    // A 2026-07-28 call's next round names its parked call by the sealed requestState (which names the process).
    const state = requestStateOf(ex);
    if (state !== undefined) {
      const pk = callerKey(ex);
      const claims = open(this.keys(), 'request-state', state, isAnonymous(pk) ? undefined : hashPrincipal(pk));
      const socket = claims ? this.byProcess.get(claims.replica) : undefined;
      return socket ? [socket] : [];
    }
    const sse = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    return sse !== null && SDK_SSE_ID.test(sse) ? [...this.byProcess.values()] : [];
  }

  private agent(socket: string): Agent {
    let a = this.agents.get(socket);
    if (!a) this.agents.set(socket, (a = new Agent({ connect: { socketPath: socket }, keepAliveTimeout: 4_000 })));
    return a;
  }

  /** The request, as it came, to each socket in turn until one holds its session (not 404). */
  private async relay(ex: BrokerExchange, sockets: string[]): Promise<void> {
    ex.handedOff = true;
    const drop = hopByHopNames(ex.req.headers.connection);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(ex.req.headers))
      if (v !== undefined && !drop.has(k) && !k.startsWith(':') && k !== 'content-length') headers[k] = v;
    const gone = new AbortController();
    ex.res.once('close', () => gone.abort());
    for (const [i, socket] of sockets.entries()) {
      const answer = await request(`http://sluice-worker${ex.req.url ?? '/'}`, {
        method: (ex.req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers,
        body: ex.body && ex.body.length > 0 ? ex.body : null,
        dispatcher: this.agent(socket),
        signal: gone.signal,
      }).catch(() => undefined);
      if (!answer) continue;
      if (answer.statusCode === 404 && i < sockets.length - 1) {
        await answer.body.dump();
        continue;
      }
      ex.brokerUpstream = `worker ${socket}`;
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !drop.has(k)) out[k] = v;
      ex.res.writeHead(answer.statusCode, out);
      ex.res.flushHeaders();
      answer.body.on('data', (chunk: Buffer) => {
        ex.bytesOut += chunk.length;
        if (!ex.res.write(chunk)) answer.body.pause();
      });
      ex.res.on('drain', () => answer.body.resume());
      await new Promise<void>((resolve) => {
        answer.body.once('end', () => {
          ex.res.end();
          resolve();
        });
        answer.body.once('error', () => {
          ex.res.destroy();
          resolve();
        });
        ex.res.once('close', () => {
          answer.body.destroy();
          resolve();
        });
      });
      return;
    }
    throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no worker of this Sluice holds the session');
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.destroy().catch(() => undefined)));
    this.agents.clear();
  }
}

function requestStateOf(ex: BrokerExchange): string | undefined {
  let parsed: unknown;
  try {
    parsed = parsedBody(ex);
  } catch {
    return undefined;
  }
  const state = (parsed as { params?: { requestState?: unknown } } | undefined)?.params?.requestState;
  return typeof state === 'string' ? state : undefined;
}
