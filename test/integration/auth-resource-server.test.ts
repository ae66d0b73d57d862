// Resource-server mode: Sluice checks bearer JWTs from a local authorization server (and hashed
// API keys) itself, serves RFC 9728 metadata, answers 401/403 challenges, binds sessions to the
// principal and never lets the client's token reach the upstream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { hashApiKey } from '../../src/security/bearer.ts';
import { registerDemoV1, registerDemoV2 } from '../../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { startOAuthServer, type OAuthServer } from '../fixtures/oauth-server.ts';
import { buildConnector } from 'undici';
import { accessLines, freePort, JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway, RPC_OK } from '../helpers.ts';

const INIT = rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } });
const UPSTREAM_CREDENTIAL = 'Bearer upstream-own-credential-7c1e';

describe('resource-server mode', () => {
  let as: OAuthServer;
  let upstream: UpstreamKit;
  let sluice: TestGateway;
  let resource: string;
  let strict: FakeUpstream;
  let refusals = 1;
  const seen: (string | undefined)[] = [];

  before(async () => {
    as = await startOAuthServer({ 'agent-a': { secret: 'secret-a', scope: 'mcp:tools' }, 'agent-b': { secret: 'secret-b', scope: 'mcp:tools' }, 'sluice-upstream': { secret: 'up-secret', scope: 'upstream:call' } });
    upstream = await startUpstreamKit({ name: 'recorded', registerV1: registerDemoV1, registerV2: registerDemoV2, onRequest: (req) => void seen.push(req.headers.authorization) });
    // Refuses the first credential it sees (a revoked token), then accepts.
    strict = await startFakeUpstream((_req, res) => {
      if (refusals-- > 0) return void res.writeHead(401, { 'www-authenticate': 'Bearer realm="internal", error="invalid_token"' }).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK);
    });
    const port = await freePort();
    process.env['SLUICE_TEST_CC_SECRET'] = 'up-secret'; // clientSecretEnv: the secret stays out of the config
    resource = `http://127.0.0.1:${port}/mcp`;
    sluice = await startTestGateway({
      listen: [{ host: '127.0.0.1', port }],
      routes: [
        {
          path: '/mcp',
          upstream: upstream.url,
          auth: {
            mode: 'resource-server',
            resource,
            issuer: as.issuer,
            algorithms: ['RS256'],
            scopes: ['mcp:tools'],
            apiKeys: [{ name: 'ci-bot', sha256: hashApiKey('sk-test-ci-0001'), scopes: ['mcp:tools'] }],
            upstreamCredential: { value: UPSTREAM_CREDENTIAL },
          },
        },
        {
          path: '/rot',
          upstream: upstream.url,
          auth: { mode: 'resource-server', resource: `http://127.0.0.1:${port}/rot`, issuer: as.issuer, jwksCacheTtl: '1s', upstreamCredential: { value: UPSTREAM_CREDENTIAL } },
        },
        {
          path: '/down',
          upstream: upstream.url,
          auth: { mode: 'resource-server', resource: `http://127.0.0.1:${port}/down`, issuer: `http://127.0.0.1:${await freePort()}` },
        },
        {
          path: '/badcc',
          upstream: upstream.url,
          auth: {
            mode: 'resource-server',
            resource: `http://127.0.0.1:${port}/badcc`,
            apiKeys: [{ name: 'ci-bot', sha256: hashApiKey('sk-test-ci-0001') }],
            upstreamCredential: { clientCredentials: { tokenUrl: `${as.issuer}/token`, clientId: 'sluice-upstream', clientSecret: 'wrong-secret' } },
          },
        },
        {
          path: '/revoked',
          upstream: strict.url,
          auth: {
            mode: 'resource-server',
            resource: `http://127.0.0.1:${port}/revoked`,
            apiKeys: [{ name: 'ci-bot', sha256: hashApiKey('sk-test-ci-0001') }],
            upstreamCredential: { clientCredentials: { tokenUrl: `${as.issuer}/token`, clientId: 'sluice-upstream', clientSecretEnv: 'SLUICE_TEST_CC_SECRET' } },
          },
        },
        {
          path: '/cc',
          upstream: upstream.url,
          auth: {
            mode: 'resource-server',
            resource: `http://127.0.0.1:${port}/cc`,
            apiKeys: [{ name: 'ci-bot', sha256: hashApiKey('sk-test-ci-0001') }],
            upstreamCredential: { clientCredentials: { tokenUrl: `${as.issuer}/token`, clientId: 'sluice-upstream', clientSecretEnv: 'SLUICE_TEST_CC_SECRET', resource: upstream.url } },
          },
        },
      ],
    });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
    await strict.close();
    await as.close();
  });

  const post = (token: string | undefined, body = INIT, path = '/mcp', extra: Record<string, string> = {}) =>
    send(sluice.base, { method: 'POST', path, headers: { ...JSON_HEADERS, ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra }, body });

  it('answers 401 with the metadata URL and serves RFC 9728 metadata', async () => {
    const res = await post(undefined);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], `Bearer resource_metadata="http://127.0.0.1:${sluice.port}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`);
    const meta = await send(sluice.base, { path: '/.well-known/oauth-protected-resource/mcp' });
    assert.equal(meta.status, 200);
    assert.deepEqual(JSON.parse(meta.body.toString()), { resource, authorization_servers: [as.issuer], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] });
    assert.equal(meta.headers['access-control-allow-origin'], '*');
    const line = accessLines(sluice.logs).find((l) => l['status'] === 401);
    assert.equal(line?.['security'], 'auth-failed');
  });

  it('accepts a valid token and refuses each bad one with invalid_token', async () => {
    const good = await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools' });
    assert.equal((await post(good)).status, 200);
    const cases: [string, string, RegExp][] = [
      ['expired', await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools', exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
      ['other audience', await as.issue({ sub: 'alice', aud: 'https://elsewhere.example/mcp', scope: 'mcp:tools' }), /claim aud/],
      ['other issuer', await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools', iss: 'https://evil.example' }), /claim iss/],
      ['forged signature', await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools' }, { key: 'foreign' }), /signature invalid/],
      ['algorithm not allowed', await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools' }, { alg: 'PS256' }), /algorithm/],
      ['garbage', 'not.a.jwt', /malformed/],
      ['unknown API key', 'sk-test-wrong', /not a valid token or API key/],
    ];
    for (const [what, token, reason] of cases) {
      const res = await post(token);
      assert.equal(res.status, 401, what);
      const challenge = String(res.headers['www-authenticate']);
      assert.match(challenge, /error="invalid_token"/, what);
      assert.match(challenge, reason, what);
      assert.match(challenge, /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/, what);
    }
  });

  it('answers 403 insufficient_scope naming the scope', async () => {
    const res = await post(await as.issue({ sub: 'alice', aud: resource, scope: 'other' }));
    assert.equal(res.status, 403);
    assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope"/);
    assert.match(String(res.headers['www-authenticate']), /scope="mcp:tools"/);
    assert.equal(accessLines(sluice.logs).find((l) => l['status'] === 403)?.['security'], 'insufficient-scope');
  });

  it('accepts a hashed API key', async () => {
    assert.equal((await post('sk-test-ci-0001')).status, 200);
  });

  it('binds sessions to the principal: another caller with the same session id gets 404', async () => {
    const alice = await as.issue({ sub: 'alice', aud: resource, scope: 'mcp:tools' });
    const bob = await as.issue({ sub: 'bob', aud: resource, scope: 'mcp:tools' });
    const init = await post(alice);
    const sid = String(init.headers['mcp-session-id']);
    const list = rpc('tools/list', {}, 2);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    assert.equal((await post(alice, list, '/mcp', h)).status, 200);
    assert.equal((await post(bob, list, '/mcp', h)).status, 404);
    assert.equal((await post('sk-test-ci-0001', list, '/mcp', h)).status, 404);
  });

  it('lets the SDK client discover and authenticate through Sluice; the upstream never sees its token (1,000 calls)', async () => {
    const provider = new ClientCredentialsProvider({ clientId: 'agent-a', clientSecret: 'secret-a', expectedIssuer: as.issuer });
    const client = new Client({ name: 'oauth-client', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider }));
    const token = provider.tokens()?.access_token;
    assert.ok(token, 'the SDK obtained a token');
    const before = seen.length;
    for (let i = 0; i < 1000; i++) {
      const r = await client.callTool({ name: 'add', arguments: { a: i, b: 1 } });
      assert.equal((r.content as { text: string }[])[0]?.text, String(i + 1));
    }
    await client.close();
    const during = seen.slice(before);
    assert.ok(during.length >= 1000, `${during.length} upstream requests`);
    assert.ok(during.every((a) => a === UPSTREAM_CREDENTIAL), 'every upstream request carried the route credential, none the client token');
    assert.ok(!seen.some((a) => a?.includes(token)), 'the client token never reached the upstream');
    assert.equal(as.hits.get('/jwks'), 1, 'keys fetched once and cached');
  });

  it('refetches keys when a token names an unknown key id (rotation), not more often than the cache allows', async () => {
    const rot = resource.replace(/\/mcp$/, '/rot');
    const before = as.hits.get('/jwks') ?? 0;
    assert.equal((await post(await as.issue({ sub: 'alice', aud: rot }), INIT, '/rot')).status, 200);
    assert.equal(as.hits.get('/jwks'), before + 1);
    await as.rotate();
    const fresh = await as.issue({ sub: 'alice', aud: rot });
    // Within the refetch gap an unknown kid is refused without a fetch (a forged-kid flood costs nothing)...
    assert.equal((await post(fresh, INIT, '/rot')).status, 401);
    assert.equal(as.hits.get('/jwks'), before + 1);
    await new Promise((r) => setTimeout(r, 1100));
    // ...after it, the new key is fetched and the token accepted.
    assert.equal((await post(fresh, INIT, '/rot')).status, 200);
    assert.equal(as.hits.get('/jwks'), before + 2);
  });

  it('obtains the upstream credential with client credentials, once, and sends it instead of the client token', async () => {
    const before = seen.length;
    for (let i = 0; i < 5; i++) assert.equal((await post('sk-test-ci-0001', INIT, '/cc')).status, 200);
    const got = seen.slice(before);
    assert.equal(got.length, 5);
    const first = got[0]!;
    assert.match(first, /^Bearer ey/);
    assert.ok(got.every((a) => a === first));
    const mine = as.tokenRequests.filter((t) => t.authorization === `Basic ${Buffer.from('sluice-upstream:up-secret').toString('base64')}`);
    assert.equal(mine.length, 1, 'one token for five calls');
    assert.equal(mine[0]?.form.get('resource'), upstream.url);
  });

  it('answers 502 without calling the upstream when the route credential cannot be obtained', async () => {
    const before = seen.length;
    const res = await post('sk-test-ci-0001', INIT, '/badcc');
    assert.equal(res.status, 502);
    assert.match(res.body.toString(), /upstream credential could not be obtained/);
    assert.equal(seen.length, before);
    assert.ok(sluice.logs.some((l) => l['msg'] === 'upstream credential unavailable' && String(l['err']).includes('invalid_client')));
    assert.ok(!sluice.rawLog().includes('wrong-secret'), 'the secret is not logged');
  });

  it('turns an upstream 401 to the route credential into 502 (no challenge reaches the client) and fetches a new token next time', async () => {
    const tokens = () => as.tokenRequests.filter((t) => t.authorization === `Basic ${Buffer.from('sluice-upstream:up-secret').toString('base64')}`).length;
    const before = tokens();
    const refused = await post('sk-test-ci-0001', INIT, '/revoked');
    assert.equal(refused.status, 502);
    assert.equal(refused.headers['www-authenticate'], undefined);
    assert.match(refused.body.toString(), /Upstream refused the route's credential/);
    assert.equal((await post('sk-test-ci-0001', INIT, '/revoked')).status, 200);
    assert.equal(tokens(), before + 2, 'the refused token was dropped and a new one fetched');
    assert.equal(strict.requests.length, 2);
    assert.notEqual(strict.requests[0]?.headers.authorization, strict.requests[1]?.headers.authorization);
  });

  it('answers 503 (never "valid") when the issuer cannot be reached, and names why in the log', async () => {
    const token = await as.issue({ sub: 'alice', aud: resource.replace(/\/mcp$/, '/down') });
    const res = await post(token, INIT, '/down');
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '5');
    assert.match(res.body.toString(), /Token validation unavailable/);
    assert.ok(sluice.logs.some((l) => l['msg'] === 'token keys unavailable' && /no JWKS found/.test(String(l['err']))));
  });
});

describe('resource-server mode: fetching keys goes through the SSRF guard', () => {
  it('refuses a jwks_uri at a cloud metadata address named by the issuer, without a connection', async () => {
    // A compromised or hostile issuer points its jwks_uri at the metadata service.
    const as = await startOAuthServer({}, { jwksUri: 'http://169.254.169.254/latest/meta-data/jwks' });
    const upstream = await startUpstreamKit({ name: 'ssrf', registerV1: registerDemoV1, registerV2: registerDemoV2 });
    const dialled: string[] = [];
    const real = buildConnector({ timeout: 2000 });
    const sluice = await startTestGateway(
      { routes: [{ path: '/mcp', upstream: upstream.url, auth: { mode: 'resource-server', resource: 'http://127.0.0.1/mcp', issuer: as.issuer } }] },
      {
        // Records every address a socket is opened to (only loopback ones are really dialled).
        connector: (opts, cb) => {
          dialled.push(opts.hostname);
          if (!opts.hostname.startsWith('127.')) return cb(new Error('test connector: not loopback'), null);
          real(opts, cb);
        },
      },
    );
    try {
      const token = await as.issue({ sub: 'alice', aud: 'http://127.0.0.1/mcp' });
      const res = await send(`${sluice.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, authorization: `Bearer ${token}` }, body: INIT });
      assert.equal(res.status, 503);
      assert.ok(!dialled.includes('169.254.169.254'), `dialled ${dialled.join(', ')}`);
      assert.equal(as.hits.get('/.well-known/oauth-authorization-server'), 1, 'the issuer metadata was fetched');
      assert.ok(sluice.logs.some((l) => l['msg'] === 'token keys unavailable' && /metadata/i.test(String(l['err']))), 'the refusal is named');
    } finally {
      await sluice.close();
      await upstream.close();
      await as.close();
    }
  });
});
