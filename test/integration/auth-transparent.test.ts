// Transparent mode (the default): the upstream is the resource server. Authorization and
// WWW-Authenticate pass, and its protected-resource metadata is served at the public URL with
// `resource` and the challenge's `resource_metadata` rewritten, so the SDK client accepts them
// although the public path (/public) differs from the upstream's (/mcp).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { registerDemoV1, registerDemoV2 } from '../../src/demo/demo-tools.ts';
import { startUpstreamKit, type UpstreamKit } from '../../src/demo/upstream-kit.ts';
import { startOAuthServer, type OAuthServer } from '../fixtures/oauth-server.ts';
import { freePort, JSON_HEADERS, rpc, send, startTestGateway, type TestGateway } from '../helpers.ts';

describe('transparent mode', () => {
  let as: OAuthServer;
  let upstream: UpstreamKit;
  let sluice: TestGateway;
  let publicUrl: string;
  const upstreamSaw: (string | undefined)[] = [];

  before(async () => {
    as = await startOAuthServer({ 'agent-a': { secret: 'secret-a', scope: 'mcp:tools' } });
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}/public`;
    // The upstream is a resource server configured with its public URL as audience (it looks
    // tokens up in what the test's AS issued: signatures are Sluice's business in the other mode).
    const guard = (req: IncomingMessage, res: ServerResponse): boolean => {
      const path = (req.url ?? '').split('?')[0];
      const origin = `http://127.0.0.1:${upstream.port}`;
      if (path === '/.well-known/oauth-protected-resource/mcp') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource: `${origin}/mcp`, authorization_servers: [as.issuer], scopes_supported: ['mcp:tools'], resource_name: 'demo' }));
        return true;
      }
      if (path !== '/mcp') return false;
      upstreamSaw.push(req.headers.authorization);
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const challenge = `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`;
      const claims = token ? as.issued.get(token) : undefined;
      if (claims?.aud === publicUrl) return false;
      res.writeHead(401, { 'www-authenticate': token ? `${challenge}, error="invalid_token"` : challenge, 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return true;
    };
    upstream = await startUpstreamKit({ name: 'rs', registerV1: registerDemoV1, registerV2: registerDemoV2, extraRoutes: guard });
    sluice = await startTestGateway({ listen: [{ host: '127.0.0.1', port }], routes: [{ path: '/public', upstream: upstream.url }] });
  });
  after(async () => {
    await sluice.close();
    await upstream.close();
    await as.close();
  });

  it('rewrites resource_metadata in the upstream challenge to the public metadata URL', async () => {
    const res = await send(publicUrl, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], `Bearer resource_metadata="http://127.0.0.1:${sluice.port}/.well-known/oauth-protected-resource/public", scope="mcp:tools"`);
  });

  it('serves the upstream metadata at the public well-known URL with the public resource', async () => {
    const res = await send(sluice.base, { path: '/.well-known/oauth-protected-resource/public' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), { resource: publicUrl, authorization_servers: [as.issuer], scopes_supported: ['mcp:tools'], resource_name: 'demo' });
    assert.equal((await send(sluice.base, { path: '/.well-known/oauth-protected-resource/elsewhere' })).status, 404);
  });

  it('lets the SDK client discover, get a token for the public URL and call through; the token reaches the upstream unchanged', async () => {
    const provider = new ClientCredentialsProvider({ clientId: 'agent-a', clientSecret: 'secret-a', expectedIssuer: as.issuer });
    const client = new Client({ name: 'transparent', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(publicUrl), { authProvider: provider }));
    const r = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    assert.match(JSON.stringify(r.content), /hi/);
    await client.close();
    const token = provider.tokens()?.access_token;
    assert.ok(token);
    assert.ok(upstreamSaw.includes(`Bearer ${token}`), 'the client token passed through');
    assert.equal(as.tokenRequests.at(-1)?.form.get('resource'), publicUrl, 'the token was asked for the public resource');
  });
});
