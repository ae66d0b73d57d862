// Config checks that need the environment or more than the schema, shared by `sluice validate`
// and the start of the gateway: a config that validates starts.
import { ConfigError } from './load.ts';
import type { Config, RouteConfig } from './schema.ts';

/** The secrets a route names by environment variable that are not set, as field: problem lines. */
export function missingRouteSecrets(route: RouteConfig, env: NodeJS.ProcessEnv): string[] {
  const problems = credentialSecrets(route.auth.upstreamCredential, 'auth.upstreamCredential', env);
  for (const [name, s] of Object.entries(route.servers ?? {}))
    problems.push(...credentialSecrets(s.upstreamCredential, `servers.${name}.upstreamCredential`, env));
  return problems;
}

function credentialSecrets(
  c: RouteConfig['auth']['upstreamCredential'],
  where: string,
  env: NodeJS.ProcessEnv,
): string[] {
  const problems: string[] = [];
  if (c?.valueEnv && !env[c.valueEnv])
    problems.push(`${where}.valueEnv: environment variable ${c.valueEnv} is not set`);
  const cc = c?.clientCredentials;
  if (cc?.clientSecretEnv && !env[cc.clientSecretEnv])
    problems.push(`${where}.clientCredentials.clientSecretEnv: environment variable ${cc.clientSecretEnv} is not set`);
  return problems;
}

/** Secrets routes name by environment variable must be set (checked by `validate`, and at start). */
export function checkAuthSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): void {
  const problems = config.routes.flatMap((r, i) => missingRouteSecrets(r, env).map((p) => `routes[${i}].${p}`));
  if (problems.length > 0) throw new ConfigError('auth', problems);
}
