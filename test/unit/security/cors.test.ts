// The CORS policy: which origins are allowed, what a preflight allows, what answers expose.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowedOrigin, corsEnabled, isPreflight, preflightHeaders, responseCorsHeaders } from '../../../src/security/cors.ts';

const policy = (allowOrigins: string[], allowHeaders: string[] = []) => ({ allowOrigins, allowHeaders, maxAge: 600_000 });

describe('CORS policy', () => {
  it('is off without origins, allows listed origins exactly, and "*" for any', () => {
    assert.equal(corsEnabled(policy([])), false);
    const p = policy(['https://app.example']);
    assert.equal(allowedOrigin(p, 'https://app.example'), 'https://app.example');
    for (const o of ['https://app.example.evil', 'http://app.example', 'https://APP.example', 'null', undefined]) assert.equal(allowedOrigin(p, o), undefined, String(o));
    assert.equal(allowedOrigin(policy(['*']), 'https://any.example'), '*');
    assert.equal(allowedOrigin(policy(['*']), undefined), undefined);
  });

  it('tells preflights from plain OPTIONS', () => {
    assert.equal(isPreflight('OPTIONS', { origin: 'https://a', 'access-control-request-method': 'POST' }), true);
    assert.equal(isPreflight('OPTIONS', { origin: 'https://a' }), false);
    assert.equal(isPreflight('POST', { origin: 'https://a', 'access-control-request-method': 'POST' }), false);
  });

  it('allows the MCP headers, the requested Mcp-Param-* names and configured extras, nothing else', () => {
    const h = preflightHeaders(policy(['https://a'], ['X-Api-Key']), 'https://a', 'content-type, Mcp-Param-Region, x-evil, mcp-param-bad name, mcp-session-id');
    const allowed = h['access-control-allow-headers']!.toLowerCase().split(', ');
    for (const name of ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name', 'mcp-param-region', 'x-api-key']) assert.ok(allowed.includes(name), name);
    assert.ok(!allowed.includes('x-evil'));
    assert.ok(!allowed.some((n) => n.includes(' ')));
    assert.equal(h['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS');
    assert.equal(h['access-control-max-age'], '600');
    assert.equal(h['access-control-allow-origin'], 'https://a');
    assert.match(h['vary']!, /Origin/);
  });

  it('exposes the headers MCP clients must read', () => {
    const h = responseCorsHeaders('https://a');
    for (const name of ['Mcp-Session-Id', 'MCP-Protocol-Version', 'WWW-Authenticate', 'Last-Event-ID']) assert.match(h['access-control-expose-headers']!, new RegExp(name));
    assert.equal(h['vary'], 'Origin');
  });
});
