// What an upstream is (its era, identity and capabilities), found once per upstream and
// remembered: the one cache every broker asks (a stdio server, each replica of a bridged route,
// each server of a federation). A failed look is forgotten, so the next request asks again; two
// requests at once share one look.
import type { Discovery } from './upstream-link.ts';

export class EraCache<K = string> {
  private readonly finding = new Map<K, Promise<Discovery>>();
  private readonly known = new Map<K, Discovery>();

  /** What `key` is, if found already (no look). */
  get(key: K): Discovery | undefined {
    return this.known.get(key);
  }

  /** What `key` is: remembered, or found by `look` (shared by concurrent askers; forgotten if it fails). */
  find(
    key: K,
    look: () => Promise<Discovery>,
    told?: { found?(d: Discovery): void; failed?(e: Error): void },
  ): Promise<Discovery> {
    const known = this.known.get(key);
    if (known) return Promise.resolve(known);
    let p = this.finding.get(key);
    if (!p) {
      p = look();
      this.finding.set(key, p);
      p.then(
        (d) => {
          this.known.set(key, d);
          this.finding.delete(key);
          told?.found?.(d);
        },
        (e: Error) => {
          this.finding.delete(key);
          told?.failed?.(e);
        },
      );
    }
    return p;
  }
}
