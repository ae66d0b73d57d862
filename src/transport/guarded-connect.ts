// The connector every upstream connection goes through (traffic and health checks). Literal IPs
// are judged here, because Node never calls a DNS hook for them; names go through the resolver,
// every answer is judged, and the socket is opened to the very address that was judged, so a
// name cannot resolve one way for the check and another way for the connect (DNS rebinding).
// Unix sockets are refused. Nothing here reads HTTP(S)_PROXY: a proxy would resolve names itself.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { errors as undiciErrors, type buildConnector } from 'undici';
import {
  canonicalHost,
  isAllowedHost,
  judgeAddress,
  judgeName,
  judgeUrl,
  type AddressPolicy,
  type Rule,
} from '../security/address-policy.ts';

/** Every address a name resolves to (A and AAAA). */
export type Resolver = (hostname: string) => Promise<string[]>;
export type Connector = buildConnector.connector;

export const systemResolver: Resolver = async (hostname) =>
  (await dns.lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/** An upstream connection the address policy refused. The message never names the address. */
export class AddressRefused extends Error {
  readonly rule: Rule;
  readonly host: string;
  /** The refused address (for the security log only). */
  readonly address: string | undefined;
  constructor(rule: Rule, host: string, address?: string) {
    super(`upstream address refused: ${rule}`);
    this.name = 'AddressRefused';
    this.rule = rule;
    this.host = host;
    this.address = address;
  }
}

export interface GuardDeps {
  resolver: Resolver;
  /** The lookup counts against the connect timeout: a resolver that hangs is a connect timeout. */
  timeoutMs: number;
  /** Opens the socket to an already judged address; undici's own connector unless a test injects one. */
  connector: Connector;
}

export function guardedConnector(policy: AddressPolicy, deps: GuardDeps): Connector {
  return (options, callback) => {
    const refuse = (rule: Rule, host: string, address?: string): void =>
      void callback(new AddressRefused(rule, host, address), null);
    if ((options as { socketPath?: string }).socketPath)
      return refuse('unix-socket', String((options as { socketPath?: string }).socketPath));
    const host = canonicalHost(options.hostname);
    if (isIP(host)) {
      const v = judgeAddress(host, policy);
      if (!v.ok) return refuse(v.rule, host, host);
      return deps.connector(options, callback);
    }
    const name = judgeName(host, policy);
    if (!name.ok) return refuse(name.rule, host);
    const allowedByName = isAllowedHost(host, policy);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new undiciErrors.ConnectTimeoutError(`DNS lookup took longer than ${deps.timeoutMs} ms`)),
        deps.timeoutMs,
      );
    });
    Promise.race([deps.resolver(host), timedOut])
      .finally(() => clearTimeout(timer))
      .then(
        (addresses) => {
          if (addresses.length === 0) return refuse('unresolvable', host);
          for (const a of addresses) {
            const v = judgeAddress(a, policy, allowedByName);
            if (!v.ok) return refuse(v.rule, host, a);
          }
          const address = addresses[0] as string;
          // Connect to the judged address; TLS still verifies (and SNI names) the host name.
          deps.connector({ ...options, hostname: address, servername: options.servername ?? host }, callback);
        },
        (err: unknown) =>
          err instanceof undiciErrors.ConnectTimeoutError
            ? void callback(err as Error, null)
            : refuse('unresolvable', host),
      );
  };
}

/**
 * The whole judgement of a URL as the connector will make it: the URL as written, then (for a
 * name) every address it resolves to now. Used at registration and by `sluice check-upstream`;
 * the connector judges again at every connect.
 */
export async function checkUpstream(
  raw: string,
  policy: AddressPolicy,
  resolver: Resolver,
): Promise<{ ok: true; url: URL } | { ok: false; rule: Rule }> {
  const v = judgeUrl(raw, policy);
  if (!v.ok) return v;
  const host = canonicalHost(v.url.hostname);
  if (isIP(host)) return v;
  let addresses: string[];
  try {
    addresses = await resolver(host);
  } catch {
    return { ok: false, rule: 'unresolvable' };
  }
  if (addresses.length === 0) return { ok: false, rule: 'unresolvable' };
  const allowedByName = isAllowedHost(host, policy);
  for (const a of addresses) {
    const r = judgeAddress(a, policy, allowedByName);
    if (!r.ok) return r;
  }
  return v;
}
