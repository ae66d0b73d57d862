// The brokers of the running routes, kept across reloads: a stdio route whose command and
// settings stay the same keeps its broker and its sessions, and so does a bridging route whose
// upstreams stay the same, and a federated route whose servers stay the same; one removed or
// changed has its sessions ended (children stopped) and a new broker takes the route.
import type { Route } from '../routing/route-table.ts';
import { BridgeBroker } from './bridge-broker.ts';
import { FederationBroker, type FederationDeps } from './federation-broker.ts';
import type { OwningBroker, Peers } from './peers.ts';
import { StdioBroker, type BrokerDeps } from './stdio-broker.ts';

export type Broker = StdioBroker | BridgeBroker | FederationBroker;

export type BrokerSetDeps = BrokerDeps &
  FederationDeps & {
    /** Under `--workers`: the other workers, to hand them requests of the sessions they hold. */
    peers?: Peers | undefined;
  };

export class BrokerSet {
  private readonly deps: BrokerSetDeps;
  private byPath = new Map<string, Broker>();

  constructor(deps: BrokerSetDeps) {
    this.deps = deps;
  }

  /** The brokers for `routes` (by path), reusing those whose settings did not change. */
  sync(routes: readonly Route[]): ReadonlyMap<string, OwningBroker<never>> {
    const next = new Map<string, Broker>();
    for (const r of routes) {
      const old = this.byPath.get(r.path);
      if (r.members.length > 0) {
        if (old instanceof FederationBroker && old.sameAs(r)) {
          old.update(r);
          next.set(r.path, old);
        } else next.set(r.path, new FederationBroker(r, this.deps));
      } else if (r.config.stdio) {
        next.set(
          r.path,
          old instanceof StdioBroker && old.sameAs(r.config) ? old : new StdioBroker(r.config, this.deps),
        );
      } else if (r.config.bridge === 'auto') {
        if (old instanceof BridgeBroker && old.sameAs(r)) {
          old.update(r);
          next.set(r.path, old);
        } else next.set(r.path, new BridgeBroker(r, this.deps));
      }
    }
    for (const [path, b] of this.byPath)
      if (next.get(path) !== b) void (b instanceof StdioBroker ? b.close('route-removed') : b.close());
    this.byPath = next;
    const peers = this.deps.peers;
    if (!peers) return next as ReadonlyMap<string, OwningBroker<never>>;
    return new Map([...next].map(([path, b]) => [path, peers.wrap(b as OwningBroker<never>)]));
  }

  /** Ends every broker session; resolves when their children are gone. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.byPath.values()].map((b) => (b instanceof StdioBroker ? b.close('shutdown') : b.close())),
    );
  }
}
