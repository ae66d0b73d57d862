import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeSchema } from '../../../src/config/schema.ts';
import { compileRoutes, matchRoute, publicEndpoint, upstreamTarget, type Route } from '../../../src/routing/route-table.ts';
import { decodeHeaderValue } from '../../../src/security/header-body-check.ts';
import { duplicateSingleton, originFormTarget } from '../../../src/security/request-head.ts';
import { normalizePath, prefixDepth } from '../../../src/security/request-path.ts';

const routes = compileRoutes([
  routeSchema.parse({ path: '/mcp', upstream: 'http://127.0.0.1:3000/mcp' }),
  routeSchema.parse({ path: '/a', upstream: 'http://127.0.0.1:4000/' }),
  routeSchema.parse({ path: '/a/deeper', upstream: 'http://127.0.0.1:5000/x' }),
]);

/** Upstream origin + target the way the stages compute it, for the route's only replica. */
function resolve(target: string): string | undefined {
  const m = matchRoute(routes, target);
  const replica = m?.route.pool.replicas[0];
  return m && replica ? replica.origin + upstreamTarget(replica, m.rest, m.query) : undefined;
}

describe('route table', () => {
  it('matches whole segments, longest prefix first, query verbatim', () => {
    assert.equal(resolve('/mcp'), 'http://127.0.0.1:3000/mcp');
    assert.equal(resolve('/mcp?x=%2F'), 'http://127.0.0.1:3000/mcp?x=%2F');
    assert.equal(resolve('/mcpx'), undefined);
    assert.equal(resolve('/a/sse'), 'http://127.0.0.1:4000/sse');
    assert.equal(resolve('/a'), 'http://127.0.0.1:4000/');
    assert.equal(resolve('/a/deeper/y'), 'http://127.0.0.1:5000/x/y');
  });
  it('maps upstream endpoints back to public paths', () => {
    const a = routes.find((r) => r.path === '/a') as Route;
    const replica = a.pool.replicas[0];
    assert.ok(replica);
    assert.equal(publicEndpoint(a, replica, '/sse', '/messages?sessionId=1'), '/a/messages?sessionId=1');
    assert.equal(publicEndpoint(a, replica, '/sse', 'messages?sessionId=1'), '/a/messages?sessionId=1');
    assert.equal(publicEndpoint(a, replica, '/sse', 'http://other.example/messages'), 'http://other.example/messages');
  });
});

describe('request head checks', () => {
  it('finds duplicate singleton headers case-insensitively', () => {
    assert.equal(duplicateSingleton(['Host', 'a', 'host', 'b']), 'host');
    assert.equal(duplicateSingleton(['Mcp-Session-Id', 'a', 'MCP-SESSION-ID', 'a']), 'mcp-session-id');
    assert.equal(duplicateSingleton(['Accept', 'a', 'accept', 'b']), undefined);
  });
  it('reduces request targets to origin-form without trusting an authority', () => {
    assert.equal(originFormTarget('/mcp?a'), '/mcp?a');
    assert.equal(originFormTarget('http://evil/mcp?a'), '/mcp?a');
    assert.equal(originFormTarget('http://evil'), '/');
    assert.equal(originFormTarget('*'), undefined);
    assert.equal(originFormTarget('evil/mcp'), undefined);
  });
  it('decodes header values per the base64 sentinel rules', () => {
    assert.equal(decodeHeaderValue('plain'), 'plain');
    assert.equal(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?='), 'Hello, 世界');
    assert.equal(decodeHeaderValue('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?='), '=?base64?literal?=');
    assert.equal(decodeHeaderValue('=?base64?not base64?='), undefined);
    assert.equal(decodeHeaderValue('=?BASE64?SGk=?='), '=?BASE64?SGk=?=', 'markers are case-sensitive: uppercase is a plain value');
    assert.equal(decodeHeaderValue(' padded'), undefined);
  });
});

describe('request path normalisation', () => {
  it('decodes unreserved escapes, removes dot segments and reports how far .. climbed', () => {
    assert.deepEqual(normalizePath('/mcp'), { ok: true, path: '/mcp', floor: Infinity });
    assert.deepEqual(normalizePath('/a/%2e%2E/b'), { ok: true, path: '/b', floor: 0 });
    assert.deepEqual(normalizePath('/a/b/./c/..'), { ok: true, path: '/a/b/', floor: 2 });
    assert.deepEqual(normalizePath('/a/%7e%41%20'), { ok: true, path: '/a/~A%20', floor: Infinity });
    assert.deepEqual(normalizePath('/a/..'), { ok: true, path: '/', floor: 0 });
  });
  it('refuses what an upstream could split or decode differently', () => {
    for (const p of ['/a/..%2fb', '/a%2Fb', '/a%5cb', '/a\\b', '/a/%252e%252e/b', '/a/%25%32e', '/..', '/a/../..', '/a%zz', '/a%2', '/a b', '/a#f']) {
      const v = normalizePath(p);
      assert.equal(v.ok, false, p);
    }
  });
  it('counts route prefix depth by segments', () => {
    assert.equal(prefixDepth(''), 0);
    assert.equal(prefixDepth('/mcp'), 1);
    assert.equal(prefixDepth('/a/deeper'), 2);
  });
});
