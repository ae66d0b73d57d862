import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRoutes, matchRoute, publicEndpoint } from '../../src/routing/route-table.ts';
import { decodeHeaderValue } from '../../src/security/header-body-check.ts';
import { duplicateSingleton, originFormTarget } from '../../src/security/request-head.ts';

const routes = compileRoutes([
  { path: '/mcp', upstream: 'http://127.0.0.1:3000/mcp', preserveHost: false },
  { path: '/a', upstream: 'http://127.0.0.1:4000/', preserveHost: false },
  { path: '/a/deeper', upstream: 'http://127.0.0.1:5000/x', preserveHost: false },
]);

describe('route table', () => {
  it('matches whole segments, longest prefix first, query verbatim', () => {
    assert.equal(matchRoute(routes, '/mcp')?.upstreamTarget, '/mcp');
    assert.equal(matchRoute(routes, '/mcp?x=%2F')?.upstreamTarget, '/mcp?x=%2F');
    assert.equal(matchRoute(routes, '/mcpx'), undefined);
    assert.equal(matchRoute(routes, '/a/sse')?.upstreamTarget, '/sse');
    assert.equal(matchRoute(routes, '/a/deeper/y')?.route.origin, 'http://127.0.0.1:5000');
    assert.equal(matchRoute(routes, '/a/deeper/y')?.upstreamTarget, '/x/y');
  });
  it('maps upstream endpoints back to public paths', () => {
    const a = routes.find((r) => r.path === '/a');
    assert.ok(a);
    assert.equal(publicEndpoint(a, '/sse', '/messages?sessionId=1'), '/a/messages?sessionId=1');
    assert.equal(publicEndpoint(a, '/sse', 'messages?sessionId=1'), '/a/messages?sessionId=1');
    assert.equal(publicEndpoint(a, '/sse', 'http://other.example/messages'), 'http://other.example/messages');
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
