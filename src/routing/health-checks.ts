// Active health checks: every route with an interval checks each of its replicas on a timer. The
// probe itself (a TCP connect or an HTTP GET) comes from the caller, so checks go through the
// same upstream connector as traffic.
import type { Replica } from './replica-pool.ts';
import type { Route } from './route-table.ts';

export type Probe = (route: Route, replica: Replica, path: string | undefined, timeoutMs: number) => Promise<boolean>;
export type HealthChange = (route: Route, replica: Replica, healthy: boolean) => void;

/** Record one check result; returns true when the replica's health flipped. */
export function recordCheck(replica: Replica, ok: boolean, cfg: Route['config']['healthCheck']): boolean {
  if (ok) {
    replica.checkFailures = 0;
    replica.checkPasses++;
    if (!replica.healthy && replica.checkPasses >= cfg.healthyThreshold) {
      replica.healthy = true;
      return true;
    }
    return false;
  }
  replica.checkPasses = 0;
  replica.checkFailures++;
  if (replica.healthy && replica.checkFailures >= cfg.unhealthyThreshold) {
    replica.healthy = false;
    return true;
  }
  return false;
}

/** Start checking every route's replicas now and then on its interval; returns the stop function. */
export function startHealthChecks(routes: readonly Route[], probe: Probe, onChange: HealthChange): () => void {
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Replica>();
  let stopped = false;
  for (const route of routes) {
    const cfg = route.config.healthCheck;
    if (cfg.interval === 0) continue;
    const tick = (): void => {
      for (const replica of route.pool.replicas) {
        if (replica.removed || running.has(replica)) continue;
        running.add(replica);
        probe(route, replica, cfg.path, cfg.timeout)
          .catch(() => false)
          .then((ok) => {
            running.delete(replica);
            if (!stopped && recordCheck(replica, ok, cfg)) onChange(route, replica, replica.healthy);
          });
      }
    };
    tick();
    const t = setInterval(tick, cfg.interval);
    t.unref();
    timers.push(t);
  }
  return () => {
    stopped = true;
    for (const t of timers) clearInterval(t);
  };
}
