// `sluice config nginx|caddy|haproxy|traefik --upstream URL [--upstream URL …] [--listen HOST:PORT] [--allow-origin O]`
import { parseArgs } from 'node:util';
import { caddyConfig } from '../generate/caddy.ts';
import { frontingOptions, FrontingError, type FrontingOptions } from '../generate/fronting.ts';
import { haproxyConfig } from '../generate/haproxy.ts';
import { nginxConfig } from '../generate/nginx.ts';
import { traefikConfig } from '../generate/traefik.ts';

const WRITERS: Record<string, (o: FrontingOptions) => string> = {
  nginx: nginxConfig,
  caddy: caddyConfig,
  haproxy: haproxyConfig,
  traefik: traefikConfig,
};

export function runConfig(args: string[], usage: (message: string) => never): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      upstream: { type: 'string', multiple: true },
      listen: { type: 'string' },
      'allow-origin': { type: 'string' },
    },
    strict: true,
  });
  const kind = positionals[0];
  const write = kind ? WRITERS[kind] : undefined;
  if (!write || positionals.length > 1) usage(`config needs one of ${Object.keys(WRITERS).join(', ')}`);
  try {
    process.stdout.write(write(frontingOptions(values.upstream ?? [], values.listen, values['allow-origin'])));
  } catch (err) {
    if (err instanceof FrontingError) usage(err.message);
    throw err;
  }
}
