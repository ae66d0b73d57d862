// Broker state (a stdio child, a bridged or federated session, a parked 2026-07-28 round) lives in
// one process, and a request for it may reach another: another worker of the same Sluice
// (`serve --workers`), or another Sluice instance behind the same balancer (`cluster:`). The
// sealed token names the owner (instance.ts): its process, and on a cluster the address its
// instance's peer listener is reached at. The process that got the request hands it, as it came,
// to the owner and passes the answer back, streams included: to a worker over its private Unix
// socket, to another instance over its peer listener (authenticated, peer-auth.ts), where the
// instance's own workers hand it on by the same rule. An HTTP+SSE session id names no process: the
// other workers are asked in turn until one has it. A request that arrived on a worker's socket is
// never handed on again; one that arrived from a peer is never handed to another instance. An
// owner that cannot be reached gives the answer a client acts on: 404 for a session (it starts
// again), -32602 for a parked round, and a log line naming the instance.
import type { Socket } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { SluiceError } from '../core/errors.ts';
import { H } from '../core/mcp.ts';
import type { Logger } from '../observability/logger.ts';
import { hopByHopNames } from '../security/hop-by-hop.ts';
import type { KeyRing } from '../session/key-ring.ts';
import { hashPrincipal, open } from '../session/token.ts';
import { callerKey, isAnonymous } from './bridge-common.ts';
import { advertisedAddress, parseOwner, PROCESS } from './instance.ts';
import { PEER_HEADER, peerSignature } from './peer-auth.ts';
import { parsedBody } from './web-exchange.ts';
import type { BrokerExchange, RouteBroker } from '../core/route-broker.ts';

const SDK_SSE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where a request goes: a worker's socket, or another instance's peer address. */
type Target = { kind: 'worker'; socket: string } | { kind: 'peer'; address: string };
/** What the request names: a session, or a parked round (their owner gone gives different answers). */
type Names = 'session' | 'request-state';

export interface HandOffMetrics {
  handOff(to: 'worker' | 'peer', result: 'relayed' | 'owner-gone', seconds: number): void;
}

export class Peers {
  /** The other workers: process name → private socket path. */
  private byProcess = new Map<string, string>();
  private readonly agents = new Map<string, Agent>();
  /** Connections that came in on this worker's private socket. */
  readonly internal = new WeakSet<Socket>();
  /** Connections that came in on the peer listener (from another instance). */
  readonly fromPeer = new WeakSet<Socket>();
  private readonly keys: () => KeyRing;
  private readonly log: Logger | undefined;
  private readonly metrics: () => HandOffMetrics | undefined;

  constructor(keys: () => KeyRing, log?: Logger, metrics: () => HandOffMetrics | undefined = () => undefined) {
    this.keys = keys;
    this.log = log;
    this.metrics = metrics;
  }

  /** The workers as the primary announced them (this one included, and left out here). */
  set(all: Record<string, string>): void {
    this.byProcess = new Map(Object.entries(all).filter(([p]) => p !== PROCESS));
    for (const [socket, agent] of this.agents)
      if (socket.startsWith('/') && ![...this.byProcess.values()].includes(socket)) {
        void agent.close();
        this.agents.delete(socket);
      }
  }

  /**
   * `broker`, handing a request of another process's state to that process: a RouteBroker
   * around a RouteBroker, as an undici interceptor wraps a dispatcher.
   */
  wrap(broker: RouteBroker): RouteBroker {
    return {
      kind: broker.kind,
      handle: (ex) => {
        const to = this.elsewhere(ex, broker);
        return to ? this.relay(ex, to.targets, to.names) : broker.handle(ex);
      },
      owns: (ex) => broker.owns(ex),
      state: () => broker.state(),
      close: (reason, deadline) => broker.close(reason, deadline),
    };
  }

  /** Where to hand a request this process does not hold the state of (undefined: serve it here). */
  private elsewhere(ex: BrokerExchange, broker: RouteBroker): { targets: Target[]; names: Names } | undefined {
    if (this.internal.has(ex.req.socket) || broker.owns(ex)) return undefined;
    const raw = ex.req.headers[H.sessionId];
    const token = Array.isArray(raw) ? raw[0] : raw;
    if (token !== undefined) {
      const claims = open(this.keys(), 'session', token);
      return this.owner(ex, claims?.replica, 'session');
    }
    // A 2026-07-28 call's next round names its parked call by the sealed requestState.
    const state = requestStateOf(ex);
    if (state !== undefined) {
      const pk = callerKey(ex);
      const claims = open(this.keys(), 'request-state', state, isAnonymous(pk) ? undefined : hashPrincipal(pk));
      return this.owner(ex, claims?.replica, 'request-state');
    }
    const sse = ex.routeRest === '/messages' ? new URLSearchParams(ex.query).get('sessionId') : null;
    return sse !== null && SDK_SSE_ID.test(sse) && this.byProcess.size > 0
      ? { targets: [...this.byProcess.values()].map((socket) => ({ kind: 'worker', socket })), names: 'session' }
      : undefined;
  }

  private owner(
    ex: BrokerExchange,
    tag: string | undefined,
    names: Names,
  ): { targets: Target[]; names: Names } | undefined {
    if (tag === undefined) return undefined;
    const { process, address } = parseOwner(tag);
    const socket = this.byProcess.get(process);
    if (socket) return { targets: [{ kind: 'worker', socket }], names };
    // Another instance's: handed over once (never from a request a peer handed here).
    if (address !== undefined && address !== advertisedAddress() && !this.fromPeer.has(ex.req.socket))
      return { targets: [{ kind: 'peer', address }], names };
    return undefined;
  }

  private agent(target: Target): Agent {
    const key = target.kind === 'worker' ? target.socket : target.address;
    let a = this.agents.get(key);
    if (!a) {
      a =
        target.kind === 'worker'
          ? new Agent({ connect: { socketPath: target.socket }, keepAliveTimeout: 4_000 })
          : new Agent({ connect: { timeout: 2_000 }, keepAliveTimeout: 4_000, headersTimeout: 0, bodyTimeout: 0 });
      this.agents.set(key, a);
    }
    return a;
  }

  /** The request, as it came, to each target in turn until one holds its state (not 404). */
  private async relay(ex: BrokerExchange, targets: Target[], names: Names): Promise<void> {
    ex.handedOff = true;
    const drop = hopByHopNames(ex.req.headers.connection);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(ex.req.headers))
      if (v !== undefined && !drop.has(k) && !k.startsWith(':') && k !== 'content-length' && k !== PEER_HEADER)
        headers[k] = v;
    const gone = new AbortController();
    ex.res.once('close', () => gone.abort());
    const path = ex.req.url ?? '/';
    const method = (ex.req.method ?? 'GET') as Dispatcher.HttpMethod;
    for (const [i, target] of targets.entries()) {
      const started = performance.now();
      const origin = target.kind === 'worker' ? 'http://sluice-worker' : `http://${target.address}`;
      const signed = target.kind === 'peer' ? { [PEER_HEADER]: peerSignature(this.keys(), method, path) } : {};
      const answer = await request(`${origin}${path}`, {
        method,
        headers: { ...headers, ...signed },
        body: ex.body && ex.body.length > 0 ? ex.body : null,
        dispatcher: this.agent(target),
        signal: gone.signal,
      }).catch((err: Error) => {
        if (target.kind === 'peer' && !gone.signal.aborted)
          this.log?.warn(
            { instance: target.address, err: err.message, names },
            'the Sluice instance holding this state cannot be reached: the client is told to start again',
          );
        return undefined;
      });
      if (!answer) {
        if (target.kind === 'peer') this.metrics()?.handOff('peer', 'owner-gone', (performance.now() - started) / 1000);
        continue;
      }
      if (answer.statusCode === 404 && i < targets.length - 1) {
        await answer.body.dump();
        continue;
      }
      this.metrics()?.handOff(target.kind, 'relayed', (performance.now() - started) / 1000);
      ex.brokerUpstream = target.kind === 'worker' ? `worker ${target.socket}` : `instance ${target.address}`;
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
    if (names === 'request-state')
      throw new SluiceError('SLUICE_ERR_REQUEST_STATE_INVALID', 'the Sluice process holding the parked call is gone');
    throw new SluiceError('SLUICE_ERR_SESSION_NOT_FOUND', 'no process of this Sluice cluster holds the session');
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
