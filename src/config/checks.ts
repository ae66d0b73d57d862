// Config checks that need the environment or more than the schema, shared by `sluice validate`
// and the start of the gateway: a config that validates starts.
import { ConfigError } from './load.ts';
import type { Config } from './schema.ts';

/** Secrets routes name by environment variable must be set (checked by `validate`, and at start). */
export function checkAuthSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): void {
  const problems: string[] = [];
  config.routes.forEach((r, i) => {
    const c = r.auth.upstreamCredential;
    if (c?.valueEnv && !env[c.valueEnv])
      problems.push(`routes[${i}].auth.upstreamCredential.valueEnv: environment variable ${c.valueEnv} is not set`);
    const cc = c?.clientCredentials;
    if (cc?.clientSecretEnv && !env[cc.clientSecretEnv])
      problems.push(
        `routes[${i}].auth.upstreamCredential.clientCredentials.clientSecretEnv: environment variable ${cc.clientSecretEnv} is not set`,
      );
  });
  if (problems.length > 0) throw new ConfigError('auth', problems);
}
