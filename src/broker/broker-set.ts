// The brokers of the running routes, kept across reloads: a stdio route whose command and
// settings stay the same keeps its broker and its sessions; one removed or changed has its
// sessions ended (children stopped) and a new broker takes the route.
import type { RouteConfig } from '../config/schema.ts';
import { StdioBroker, type BrokerDeps } from './stdio-broker.ts';

export class BrokerSet {
  private readonly deps: BrokerDeps;
  private byPath = new Map<string, StdioBroker>();

  constructor(deps: BrokerDeps) {
    this.deps = deps;
  }

  /** The brokers for `routes` (by path), reusing those whose settings did not change. */
  sync(routes: readonly RouteConfig[]): ReadonlyMap<string, StdioBroker> {
    const next = new Map<string, StdioBroker>();
    for (const r of routes) {
      if (!r.stdio) continue;
      const old = this.byPath.get(r.path);
      next.set(r.path, old && old.sameAs(r) ? old : new StdioBroker(r, this.deps));
    }
    for (const [path, b] of this.byPath) if (next.get(path) !== b) void b.close('route-removed');
    this.byPath = next;
    return next;
  }

  /** Ends every broker session; resolves when their children are gone. */
  async close(): Promise<void> {
    await Promise.all([...this.byPath.values()].map((b) => b.close('shutdown')));
  }
}
