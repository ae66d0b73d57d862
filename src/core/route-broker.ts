// The one broker contract (DESIGN §6): what the pipeline hands a broker route's exchange to, and
// what every broker (stdio, bridge, federation; src/broker/) does. Types only, in core so both
// proxy/ (which hands exchanges over) and broker/ (which serves them) may import it without
// importing each other. The worker hand-off wraps a RouteBroker and is one itself, as an undici
// interceptor wraps a dispatcher.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a broker needs of an exchange; the proxy's Exchange satisfies it. */
export interface BrokerExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request path below the route prefix, and the query ('?…' or ''). */
  readonly routeRest: string;
  readonly query: string;
  body: Buffer | undefined;
  /** The JSON-RPC body as the classify stage parsed it (undefined: no body); never parsed again. */
  readonly message?: unknown;
  readonly principal: { readonly key: string } | undefined;
  responseSessionId: string | undefined;
  /** What served it, for the access log: the child's command and pid, the worker. */
  brokerUpstream: string | undefined;
  /** Response body bytes sent (the access log's bytesOut). */
  bytesOut: number;
  /** The client's era, as the classify stage found it (stateless: a 2026-07-28 request). */
  readonly era?: 'http+sse' | 'sessionful' | 'stateless' | undefined;
  /** Set when the broker takes the exchange: no relay stage runs after it. */
  handedOff: boolean;
  /** The route's own credential for the upstream, in place of the client's token. */
  readonly upstreamCredential?: { header: string; value: string } | undefined;
  /**
   * When the exchange must be over (epoch ms, timeouts.request), set by the hand-off for a POST;
   * a broker that answers on a stream of its own ends the call there with a JSON-RPC error.
   */
  deadline?: number | undefined;
  /**
   * The slow-client caps of the relay's streams (limits.sseClientBuffer, sseClientStall), set by
   * the hand-off: a broker's answer stream that leaves more than `buffer` bytes unread, or stays
   * behind for `stallMs` (0: never), is cut, and `cut` is told (the access log's slow-client).
   */
  slowClient?: { readonly buffer: number; readonly stallMs: number; cut(buffered: number): void } | undefined;
}

/** The kinds of broker route; a table in broker-set.ts builds each (no instanceof chains). */
export type BrokerKind = 'stdio' | 'bridge' | 'federation';

/** Why a broker closes: Sluice stops, or a reload removed or changed its route. */
export type BrokerCloseReason = 'shutdown' | 'route-removed';

/** How a broker stands, for the admin API and page. */
export interface BrokerState {
  readonly kind: BrokerKind;
  readonly route: string;
  /** Client sessions (or bridged callers) it holds now. */
  readonly sessions: number;
  /** A stdio route's children (running, starting or stopping) and their bound. */
  readonly processes?: { readonly running: number; readonly max: number } | undefined;
  /** A federated route's servers and how they stand (/admin/federation). */
  readonly servers?: readonly Record<string, unknown>[] | undefined;
}

/** `E`: what of the exchange a kind reads beyond BrokerExchange (the bridge: the replica; federation: the guard). */
export interface RouteBroker<E extends BrokerExchange = BrokerExchange> {
  readonly kind: BrokerKind;
  /** Serves `ex` (setting `ex.handedOff`), or leaves it to the relay (undefined, or a promise settling untaken). */
  handle(ex: E): Promise<void> | undefined;
  /** Whether this process holds the session (or HTTP+SSE stream) `ex` names. */
  owns(ex: E): boolean;
  state(): BrokerState;
  /**
   * Ends every session it holds, refusing new ones from now on (503), and resolves once its
   * children are reaped and its upstream sessions ended, by `deadline` (epoch ms) at the latest.
   */
  close(reason: BrokerCloseReason, deadline: number): Promise<void>;
}
