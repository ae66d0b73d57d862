// The brokers of the running routes, kept across reloads: a stdio route whose command and
// settings stay the same keeps its broker and its sessions, and so does a bridging route whose
// upstreams stay the same, and a federated route whose servers stay the same; one removed or
// changed has its sessions ended (children stopped) and a new broker takes the route.
import type { BrokerCloseReason, BrokerKind, RouteBroker } from '../core/route-broker.ts';
import type { Route } from '../routing/route-table.ts';
import { BridgeBroker } from './bridge-broker.ts';
import { FederationBroker, type FederationDeps } from './federation-broker.ts';
import type { Peers } from './peers.ts';
import { StdioBroker, type BrokerDeps } from './stdio-broker.ts';

export type BrokerSetDeps = BrokerDeps &
  FederationDeps & {
    /** Under `--workers`: the other workers, to hand them requests of the sessions they hold. */
    peers?: Peers | undefined;
  };

/** A broker as the set keeps it: the contract, and whether a reloaded route keeps it (reading the new route). */
interface KeptBroker extends RouteBroker {
  keep(route: Route): boolean;
}

/** The kinds of broker route, first match wins: which routes each serves, and how one is made. */
const KINDS: readonly {
  kind: BrokerKind;
  serves(r: Route): boolean;
  make(r: Route, deps: BrokerSetDeps): KeptBroker;
}[] = [
  { kind: 'federation', serves: (r) => r.members.length > 0, make: (r, deps) => new FederationBroker(r, deps) },
  { kind: 'stdio', serves: (r) => r.config.stdio !== undefined, make: (r, deps) => new StdioBroker(r.config, deps) },
  { kind: 'bridge', serves: (r) => r.config.bridge === 'auto', make: (r, deps) => new BridgeBroker(r, deps) },
];

export class BrokerSet {
  private readonly deps: BrokerSetDeps;
  private byPath = new Map<string, KeptBroker>();

  constructor(deps: BrokerSetDeps) {
    this.deps = deps;
  }

  /** The brokers for `routes` (by path), reusing those whose settings did not change. */
  sync(routes: readonly Route[]): ReadonlyMap<string, RouteBroker> {
    const next = new Map<string, KeptBroker>();
    for (const r of routes) {
      const kind = KINDS.find((k) => k.serves(r));
      if (!kind) continue;
      const old = this.byPath.get(r.path);
      next.set(r.path, old && old.kind === kind.kind && old.keep(r) ? old : kind.make(r, this.deps));
    }
    const removedBy = Date.now() + 30_000;
    for (const [path, b] of this.byPath) if (next.get(path) !== b) void b.close('route-removed', removedBy);
    this.byPath = next;
    const peers = this.deps.peers;
    return new Map([...next].map(([path, b]) => [path, peers ? peers.wrap(b) : b]));
  }

  /** Ends every broker session by `deadline`; resolves when their children are gone. */
  async close(reason: BrokerCloseReason, deadline: number): Promise<void> {
    await Promise.all([...this.byPath.values()].map((b) => b.close(reason, deadline)));
  }
}
