// The pure pieces of the secure edge: bearer parsing and challenges, API-key hashes, globs, the
// tool policy, token buckets, the list filter, and the JWT verifier's key cache.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { ApiKeys, bearerChallenge, bearerToken, hashApiKey, metadataUrlOf } from '../../../src/security/bearer.ts';
import { globMatcher } from '../../../src/security/glob.ts';
import { InvalidToken, JwtVerifier, KeysUnavailable } from '../../../src/security/jwt-verifier.ts';
import type { Principal } from '../../../src/security/principal.ts';
import { scopesOf } from '../../../src/security/principal.ts';
import { MemoryBuckets } from '../../../src/security/token-bucket.ts';
import { ToolPolicy } from '../../../src/security/tool-policy.ts';
import { ListFilter } from '../../../src/proxy/list-filter.ts';
import { buildConfig } from '../../../src/config/load.ts';

const who = (id: string, scopes: string[] = [], claims: Record<string, unknown> = {}): Principal => ({ id, key: id, scopes: new Set(scopes), claims });

describe('bearer tokens and challenges', () => {
  it('reads only well-formed Bearer credentials', () => {
    assert.equal(bearerToken('Bearer abc.def-ghi_~+/='), 'abc.def-ghi_~+/=');
    assert.equal(bearerToken('bearer   tok  '), 'tok');
    for (const bad of [undefined, '', 'Basic dXNlcjpw', 'Bearer', 'Bearer a b', 'Bearer a,b', 'Bearertok']) assert.equal(bearerToken(bad), undefined, String(bad));
  });

  it('writes RFC 6750 / 9728 challenges with quoted, escaped values', () => {
    assert.equal(bearerChallenge({ resourceMetadata: 'https://m.example/.well-known/oauth-protected-resource/mcp', scope: ['a', 'b'] }), 'Bearer resource_metadata="https://m.example/.well-known/oauth-protected-resource/mcp", scope="a b"');
    assert.equal(bearerChallenge({ resourceMetadata: 'u', error: 'invalid_token', description: 'bad "x"\r\ny' }), 'Bearer resource_metadata="u", error="invalid_token", error_description="bad \\"x\\"  y"');
  });

  it('puts the well-known path between host and path (RFC 9728 §3.1)', () => {
    assert.equal(metadataUrlOf('https://m.example/public/mcp'), 'https://m.example/.well-known/oauth-protected-resource/public/mcp');
    assert.equal(metadataUrlOf('https://m.example/'), 'https://m.example/.well-known/oauth-protected-resource');
    assert.equal(metadataUrlOf('http://127.0.0.1:8080/mcp/'), 'http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp');
  });

  it('matches API keys by hash only', () => {
    const keys = new ApiKeys([{ name: 'ci', sha256: hashApiKey('k-1').toUpperCase(), scopes: ['s'] }]);
    assert.deepEqual(keys.match('k-1')?.id, 'ci');
    assert.deepEqual([...keys.match('k-1')!.scopes], ['s']);
    assert.equal(keys.match('k-2'), undefined);
    assert.equal(keys.match(hashApiKey('k-1')), undefined, 'the hash itself is not a key');
    assert.equal(hashApiKey('test'), '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
  });

  it('reads scopes from scope and scp', () => {
    assert.deepEqual([...scopesOf({ scope: 'a  b' })], ['a', 'b']);
    assert.deepEqual([...scopesOf({ scp: ['c', 3, 'd'] })], ['c', 'd']);
    assert.deepEqual([...scopesOf({})], []);
  });
});

describe('globs', () => {
  it('* spans any characters (slashes too), ? one, the rest literal', () => {
    const m = globMatcher(['get_*', 'file:///pub/*', 'a?c', 'x.y']);
    for (const yes of ['get_', 'get_weather', 'file:///pub/a/b', 'abc', 'x.y']) assert.ok(m(yes), yes);
    for (const no of ['GET_x', 'set_get_x', 'file:///private/a', 'ac', 'xzy', 'x.y.z']) assert.ok(!m(no), no);
  });
});

describe('tool policy', () => {
  const policy = new ToolPolicy({
    default: 'deny',
    rules: [
      { effect: 'deny', methods: ['tools/call'], names: ['*_admin'], principals: ['intern-*'] },
      { effect: 'allow', methods: ['tools/call'], names: ['*_admin'], scopes: ['admin'] },
      { effect: 'allow', methods: ['tools/call'], names: ['read_*'] },
      { effect: 'allow', methods: ['resources/read'], names: ['file:///pub/*'], claims: { team: ['blue', 'red'] } },
    ],
  });

  it('takes the first matching rule, then the default', () => {
    assert.equal(policy.allows('tools/call', 'read_x', undefined), true);
    assert.equal(policy.allows('tools/call', 'write_x', who('a')), false);
    assert.equal(policy.allows('tools/call', 'user_admin', who('a', ['admin'])), true);
    assert.equal(policy.allows('tools/call', 'user_admin', who('intern-1', ['admin'])), false, 'the deny rule comes first');
    assert.equal(policy.allows('tools/call', 'user_admin', undefined), false);
    assert.equal(policy.allows('resources/read', 'file:///pub/a', who('a', [], { team: 'red' })), true);
    assert.equal(policy.allows('resources/read', 'file:///pub/a', who('a', [], { team: ['green', 'blue'] })), true, 'array claims match any element');
    assert.equal(policy.allows('resources/read', 'file:///pub/a', who('a', [], { team: 'green' })), false);
  });

  it('always lets the protocol plumbing and list methods through; other methods take the default', () => {
    for (const m of ['initialize', 'ping', 'notifications/initialized', 'notifications/cancelled', 'tools/list', 'resources/templates/list', undefined]) assert.equal(policy.allows(m, undefined, undefined), true, String(m));
    for (const m of ['completion/complete', 'logging/setLevel', 'constructor', 'toString', '__proto__']) assert.equal(policy.allows(m, undefined, undefined), false, m);
  });

  it('filters list results by what the caller could use', () => {
    const tools = { tools: [{ name: 'read_a' }, { name: 'write_b' }, { name: 'x_admin' }, { notAName: 1 }], nextCursor: 'c' };
    assert.deepEqual(policy.filterResult(tools, who('a', ['admin'])), { tools: [{ name: 'read_a' }, { name: 'x_admin' }], nextCursor: 'c' });
    assert.deepEqual(policy.filterResult({ resources: [{ uri: 'file:///pub/1' }, { uri: 'file:///priv/1' }] }, who('a', [], { team: 'blue' })), { resources: [{ uri: 'file:///pub/1' }] });
    assert.equal(policy.filterResult({ tools: [{ name: 'read_a' }] }, undefined), undefined, 'nothing removed');
    assert.equal(new ToolPolicy({ default: 'allow', rules: [] }).filterResult(tools, undefined), undefined);
  });
});

describe('list filter', () => {
  const policy = new ToolPolicy({ default: 'allow', rules: [{ effect: 'deny', names: ['secret*'] }] });
  const list = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, result: { tools: [{ name: 'ok' }, { name: 'secret_tool' }] } });

  it('rewrites SSE events cut anywhere, keeping ids, other events and line endings', () => {
    const stream = `: hi\r\n\r\nid: 7\r\nevent: message\r\ndata: ${list(1)}\r\n\r\nid: 8\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n`;
    const bytes = Buffer.from(stream);
    for (const cut of [1, 5, 17, 40, bytes.length - 3]) {
      const f = new ListFilter(policy, undefined, true);
      const out = Buffer.concat([f.push(bytes.subarray(0, cut)), f.push(bytes.subarray(cut)), f.end()]).toString();
      assert.ok(!out.includes('secret_tool'), `cut at ${cut}`);
      assert.ok(out.startsWith(': hi\r\n\r\nid: 7\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok"}]}}\r\n\r\nid: 8\n'), out);
      assert.ok(out.endsWith('"params":{}}\n\n'));
    }
  });

  it('joins multi-line data and passes through what is not a filtered result', () => {
    const f = new ListFilter(policy, undefined, true);
    const multi = `data: {"jsonrpc":"2.0","id":2,\ndata: "result":{"tools":[{"name":"secret"}]}}\n\n`;
    assert.equal(f.push(Buffer.from(multi)).toString(), 'data: {"jsonrpc":"2.0","id":2,"result":{"tools":[]}}\n\n');
    const other = 'data: not json "result"\n\nevent: endpoint\ndata: /messages?sessionId=1\n\n';
    assert.equal(f.push(Buffer.from(other)).toString(), other);
  });

  it('holds a JSON body whole and rewrites it (batches each message)', () => {
    const f = new ListFilter(policy, undefined, false);
    const body = Buffer.from(list(3));
    assert.equal(f.push(body.subarray(0, 10)).length, 0);
    assert.equal(f.push(body.subarray(10)).length, 0);
    assert.equal(f.end().toString(), '{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"ok"}]}}');
    const g = new ListFilter(policy, undefined, false);
    g.push(Buffer.from(`[${list(4)},{"jsonrpc":"2.0","id":5,"result":{}}]`));
    assert.equal(g.end().toString(), '[{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"ok"}]}},{"jsonrpc":"2.0","id":5,"result":{}}]');
    const h = new ListFilter(policy, undefined, false);
    h.push(Buffer.from('{"jsonrpc":"2.0","id":6,"result":{"tools":[{"name":"ok"}]}}'));
    assert.equal(h.end().toString(), '{"jsonrpc":"2.0","id":6,"result":{"tools":[{"name":"ok"}]}}', 'untouched bytes when nothing is removed');
  });
});

describe('token buckets in memory', () => {
  it('grants the burst, then one token per interval, and says how long to wait', () => {
    const b = new MemoryBuckets();
    const spec = { capacity: 3, perMs: 1 / 1000 };
    assert.deepEqual([b.take('k', spec, 0), b.take('k', spec, 0), b.take('k', spec, 0)], [0, 0, 0]);
    assert.equal(b.take('k', spec, 0), 1000);
    assert.equal(b.take('k', spec, 400), 600);
    assert.equal(b.take('k', spec, 1000), 0);
    assert.equal(b.take('other', spec, 1000), 0, 'keys are independent');
  });

  it('stays bounded under a flood of distinct keys', () => {
    const b = new MemoryBuckets();
    const spec = { capacity: 1, perMs: 1 / 1000 };
    for (let i = 0; i < 250_000; i++) b.take(`k${i}`, spec, 0);
    assert.ok(b.size <= 100_000, `${b.size} buckets`);
  });
});

describe('JWT verifier', () => {
  it('caches keys, refetches for an unknown kid only after the gap, and says when keys are unavailable', async () => {
    const one = await generateKeyPair('ES256');
    const two = await generateKeyPair('ES256');
    const jwk = async (k: CryptoKey, kid: string) => ({ ...(await exportJWK(k)), kid, alg: 'ES256' });
    let served = { keys: [await jwk(one.publicKey, 'one')] };
    let fetches = 0;
    let down = false;
    const v = new JwtVerifier({ issuer: 'https://as.example', audience: 'https://rs.example/mcp', jwksUri: 'https://as.example/jwks', algorithms: ['ES256'], clockToleranceMs: 0, cacheTtlMs: 60_000 }, async () => {
      fetches++;
      if (down) throw new Error('refused');
      return served;
    });
    const sign = (k: CryptoKey, kid: string, claims: Record<string, unknown> = {}) => new SignJWT({ sub: 's', ...claims }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('https://as.example').setAudience('https://rs.example/mcp').setExpirationTime('1m').sign(k);
    assert.equal((await v.verify(await sign(one.privateKey, 'one', { scope: 'a b' }))).id, 's');
    assert.equal((await v.verify(await sign(one.privateKey, 'one'))).key, 'https://as.example\0s');
    assert.equal(fetches, 1);
    served = { keys: [await jwk(two.publicKey, 'two')] };
    await assert.rejects(v.verify(await sign(two.privateKey, 'two')), InvalidToken, 'within the gap: no refetch');
    assert.equal(fetches, 1);
    const noSub = new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'one' }).setIssuer('https://as.example').setAudience('https://rs.example/mcp').setExpirationTime('1m').sign(one.privateKey);
    await assert.rejects(v.verify(await noSub), /no subject/);
    const noExp = new SignJWT({ sub: 's' }).setProtectedHeader({ alg: 'ES256', kid: 'one' }).setIssuer('https://as.example').setAudience('https://rs.example/mcp').sign(one.privateKey);
    await assert.rejects(v.verify(await noExp), /claim exp/);
    down = true;
    const cold = new JwtVerifier({ issuer: 'https://as.example', audience: 'x', jwksUri: 'https://as.example/jwks', algorithms: ['ES256'], clockToleranceMs: 0, cacheTtlMs: 60_000 }, async () => {
      throw new Error('refused');
    });
    let coldFetches = 0;
    const counting = new JwtVerifier({ issuer: 'https://as.example', audience: 'x', jwksUri: 'https://as.example/jwks', algorithms: ['ES256'], clockToleranceMs: 0, cacheTtlMs: 60_000 }, async () => {
      coldFetches++;
      throw new Error('refused');
    });
    await assert.rejects(cold.verify(await sign(one.privateKey, 'one')), KeysUnavailable);
    const token = await sign(one.privateKey, 'one');
    for (let i = 0; i < 20; i++) await assert.rejects(counting.verify(token), /refused/);
    assert.equal(coldFetches, 1, 'an issuer that is down is asked again only after a pause');
  });
});

describe('auth config', () => {
  const route = (auth: Record<string, unknown>, extra: Record<string, unknown> = {}) => () => buildConfig({ routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', auth, ...extra }] } as never, 'test');
  it('names what resource-server mode is missing', () => {
    assert.throws(route({ mode: 'resource-server', issuer: 'https://as.example' }), /routes\.0\.auth\.resource|routes\[0\]\.auth\.resource/);
    assert.throws(route({ mode: 'resource-server', resource: 'https://m.example/mcp' }), /needs an issuer, apiKeys, or both/);
    assert.throws(route({ issuer: 'https://as.example' }), /need mode: resource-server/);
    assert.throws(route({ mode: 'resource-server', resource: 'https://m/mcp', apiKeys: [{ name: 'a', sha256: 'abc' }] }), /64 hex digits/);
    assert.throws(route({ mode: 'resource-server', resource: 'https://m/mcp', apiKeys: [{ name: 'a', sha256: hashApiKey('x') }], upstreamCredential: { value: 'a', valueEnv: 'B' } }), /exactly one of value, valueEnv and clientCredentials/);
    assert.throws(route({}, { rateLimits: [{ by: 'route', requests: 1, concurrent: 2 }] }), /exactly one of requests and concurrent/);
    assert.throws(route({}, { policy: { rules: [{ effect: 'maybe' }] } }), /effect/);
    const ok = route({ mode: 'resource-server', resource: 'https://m/mcp', apiKeys: [{ name: 'a', sha256: hashApiKey('x').toUpperCase() }] })();
    assert.equal(ok.routes[0]?.auth.apiKeys[0]?.sha256, hashApiKey('x'));
  });
});

describe('JWT verification cache', () => {
  it('remembers a verified token only while it is unexpired and its key is still served', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.UTC(2026, 10, 24, 12) });
    const one = await generateKeyPair('RS256');
    const two = await generateKeyPair('RS256');
    let served = { keys: [{ ...(await exportJWK(one.publicKey)), kid: 'one', alg: 'RS256' }] };
    let fetches = 0;
    const v = new JwtVerifier({ issuer: 'https://as.example', audience: 'aud', jwksUri: 'https://as.example/jwks', algorithms: ['RS256'], clockToleranceMs: 0, cacheTtlMs: 60_000 }, async () => {
      fetches++;
      return served;
    });
    const now = Math.floor(Date.now() / 1000);
    const sign = (exp: number) => new SignJWT({ sub: 's' }).setProtectedHeader({ alg: 'RS256', kid: 'one' }).setIssuer('https://as.example').setAudience('aud').setIssuedAt(now).setExpirationTime(exp).sign(one.privateKey);
    const short = await sign(now + 30);
    const long = await sign(now + 3600);
    await v.verify(short);
    await v.verify(long);
    t.mock.timers.tick(31_000);
    await assert.rejects(v.verify(short), /expired/, 'the cache does not outlive exp');
    assert.equal((await v.verify(long)).id, 's');
    served = { keys: [{ ...(await exportJWK(two.publicKey)), kid: 'two', alg: 'RS256' }] };
    t.mock.timers.tick(30_000); // past jwksCacheTtl: keys refetched, the cache cleared with them
    await assert.rejects(v.verify(long), InvalidToken, 'a token of a key that left the set is refused');
    assert.equal(fetches, 2);
  });
});
