// The route's own upstream token from the OAuth client-credentials grant (RFC 6749 §4.4), fetched
// through the guarded client, kept until shortly before it expires, one fetch at a time.
import type { RouteConfig } from '../config/schema.ts';
import type { AddressPolicy } from '../security/address-policy.ts';
import { fetchSmall } from '../transport/fetch-small.ts';
import type { UpstreamClient } from '../transport/upstream-client.ts';

type Settings = NonNullable<NonNullable<RouteConfig['auth']['upstreamCredential']>['clientCredentials']>;

const EARLY_MS = 60_000;
const DEFAULT_LIFE_MS = 300_000;

export class ClientCredentials {
  private readonly s: Settings;
  private readonly secret: string;
  private readonly client: UpstreamClient;
  private readonly policy: AddressPolicy;
  private token: string | undefined;
  private expiresAt = 0;
  private pending: Promise<string> | undefined;
  /** Fetches made (tests and logs read it). */
  fetches = 0;

  constructor(s: Settings, env: NodeJS.ProcessEnv, client: UpstreamClient, policy: AddressPolicy) {
    this.s = s;
    // Set: buildGuards refuses a route whose secret variable is missing (config/checks.ts).
    this.secret = s.clientSecret ?? env[s.clientSecretEnv!] ?? '';
    this.client = client;
    this.policy = policy;
  }

  /** A current access token. */
  get(): Promise<string> {
    if (this.token && Date.now() < this.expiresAt) return Promise.resolve(this.token);
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** The upstream refused the token (revoked, rotated): the next request fetches another. */
  invalidate(): void {
    this.token = undefined;
    this.expiresAt = 0;
  }

  private async fetch(): Promise<string> {
    const { s } = this;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (s.scope) form.set('scope', s.scope);
    if (s.resource) form.set('resource', s.resource);
    const headers = ['content-type', 'application/x-www-form-urlencoded'];
    if (s.method === 'basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
      const basic = Buffer.from(`${encodeURIComponent(s.clientId)}:${encodeURIComponent(this.secret)}`).toString(
        'base64',
      );
      headers.push('authorization', `Basic ${basic}`);
    } else {
      form.set('client_id', s.clientId);
      form.set('client_secret', this.secret);
    }
    this.fetches++;
    const res = await fetchSmall(this.client, {
      url: s.tokenUrl,
      policy: this.policy,
      method: 'POST',
      headers,
      body: Buffer.from(form.toString()),
    });
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    if (res.status !== 200 || typeof json?.['access_token'] !== 'string') {
      const reason = typeof json?.['error'] === 'string' ? json['error'] : `HTTP ${res.status}`;
      throw new Error(`token endpoint ${s.tokenUrl} refused the client-credentials grant (${reason})`);
    }
    const life =
      typeof json['expires_in'] === 'number' && json['expires_in'] > 0 ? json['expires_in'] * 1000 : DEFAULT_LIFE_MS;
    this.token = json['access_token'];
    this.expiresAt = Date.now() + Math.max(life - EARLY_MS, life / 2);
    return this.token;
  }
}
