// Route checks shared by `sluice validate` and the start of the gateway (and each reload).
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { judgeUrl, RULE_TEXT } from '../security/address-policy.ts';
import { compileRoutes, withMembers } from './route-table.ts';

/** Every configured replica URL must pass its route's address policy as written. */
export function checkRouteUrls(config: Config): void {
  const problems: string[] = [];
  for (const route of withMembers(compileRoutes(config.routes))) {
    for (const replica of route.pool.replicas) {
      const v = judgeUrl(replica.url.href, route.policy);
      if (!v.ok)
        problems.push(
          `routes (path ${route.path}): upstream ${replica.id} refused by its egress policy: ${RULE_TEXT[v.rule]} (${v.rule})`,
        );
    }
  }
  if (problems.length > 0) throw new ConfigError('egress policy', problems);
}
