// User-registered upstreams through the admin API: bearer auth, URLs refused with the rule named
// (never the resolved address), a working public route per registration, tenants seeing only
// their own, removal, persistence across a restart, and the connect-time check still applied.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ConfigInput } from '../../src/config/schema.ts';
import { JSON_HEADERS, rpc, send, startDemoUpstream, startTestGateway, type TestGateway } from '../helpers.ts';

const TOKEN = 'admin-token-0123456789abcdef';

function admin(gw: TestGateway, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const a = gw.gw.adminAddress;
  assert.ok(a, 'admin listener');
  return send(`http://127.0.0.1:${a.port}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  }).then((r) => ({ status: r.status, headers: r.headers, json: r.body.length ? (JSON.parse(r.body.toString()) as Record<string, unknown>) : undefined, text: r.body.toString() }));
}

function config(file: string): Partial<ConfigInput> & Pick<ConfigInput, 'routes'> {
  return {
    routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }],
    admin: { listen: { host: '127.0.0.1', port: 0 }, token: TOKEN },
    // Tests stay on loopback: the operator allows exactly 127.0.0.1 for registered upstreams.
    registrations: { enabled: true, file, egress: { allow: ['127.0.0.1/32'] } },
  };
}

const resolver = (answers: Record<string, string[]>) => async (host: string) => answers[host] ?? [];

describe('user-registered upstreams', () => {
  it('needs the admin token; refuses to start an admin listener without one', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-reg-')), 'reg.json');
    const gw = await startTestGateway(config(file));
    try {
      for (const token of [null, 'wrong-token-wrong-token']) {
        const r = await admin(gw, 'GET', '/admin/tenants/acme/upstreams', undefined, token);
        assert.equal(r.status, 401);
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      }
      assert.equal(gw.logs.filter((l) => l['security'] === 'admin-auth-failed').length, 2);
      assert.equal((await admin(gw, 'GET', '/admin/tenants/acme/upstreams')).status, 200);
    } finally {
      await gw.close();
    }
    const saved = process.env['SLUICE_ADMIN_TOKEN'];
    delete process.env['SLUICE_ADMIN_TOKEN'];
    try {
      await assert.rejects(startTestGateway({ ...config(file), admin: { listen: { host: '127.0.0.1', port: 0 } } }), /admin\.token \(or SLUICE_ADMIN_TOKEN\) must be at least 16 characters/);
      // A token no client can send as `Bearer <token>` is refused at start, not silently unusable.
      await assert.rejects(startTestGateway({ ...config(file), admin: { listen: { host: '127.0.0.1', port: 0 }, token: 'has spaces and $ in it, 32 chars' } }), /must be sendable as a bearer token/);
    } finally {
      if (saved !== undefined) process.env['SLUICE_ADMIN_TOKEN'] = saved;
    }
  });

  it('refuses bad URLs naming the rule, never the address; validates names and bodies', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-reg-')), 'reg.json');
    const gw = await startTestGateway(config(file), { resolver: resolver({ 'evil.test': ['93.184.215.14', '10.9.8.7'], 'meta.test': ['169.254.169.254'] }) });
    try {
      const refused: [string, string][] = [
        ['http://127.0.0.2:8080/mcp', 'loopback'],
        ['http://evil.test/mcp', 'private'],
        ['http://meta.test/mcp', 'metadata'],
        ['http://169.254.169.254/latest', 'metadata'],
        ['http://[::ffff:10.0.0.1]/', 'private'],
        ['http://user:pw@127.0.0.1/', 'userinfo'],
        ['ftp://files.test/', 'scheme'],
        ['http://mcp/', 'single-label-name'],
        ['http://localhost:3000/', 'localhost-name'],
        ['http://nothing.test/', 'unresolvable'],
        ['http://a.test\\@127.0.0.1/', 'malformed-url'],
      ];
      for (const [url, rule] of refused) {
        const r = await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'x', url });
        assert.equal(r.status, 422, url);
        assert.equal((r.json?.['error'] as { rule: string }).rule, rule, url);
        assert.doesNotMatch(r.text, /10\.9\.8\.7|169\.254\.169\.254.*resolv/, 'the resolved address is never named');
      }
      assert.ok(gw.logs.filter((l) => l['security'] === 'registration-refused').length >= refused.length);
      assert.equal((await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'Bad Name', url: 'http://127.0.0.1/' })).status, 400);
      assert.equal((await admin(gw, 'POST', '/admin/tenants/acme/upstreams', '{not json')).status, 400);
      assert.equal((await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'q', url: 'http://127.0.0.1/?x=1' })).status, 400);
      assert.equal((await admin(gw, 'PUT', '/admin/tenants/acme/upstreams')).status, 405);
      assert.equal((await admin(gw, 'GET', '/admin/tenants/ACME/upstreams')).status, 404);
      assert.deepEqual((await admin(gw, 'GET', '/admin/tenants/acme/upstreams')).json, { upstreams: [] });
    } finally {
      await gw.close();
    }
  });

  it('serves a registration on its public route, per tenant, and keeps it across a restart until it is removed', async () => {
    const upstream = await startDemoUpstream();
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-reg-')), 'reg.json');
    let gw = await startTestGateway(config(file));
    try {
      const created = await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'demo', url: upstream.url });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.json?.['route'], '/u/acme/demo');
      assert.equal((await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'demo', url: upstream.url })).status, 409);
      await admin(gw, 'POST', '/admin/tenants/other/upstreams', { name: 'theirs', url: upstream.url });
      const mine = (await admin(gw, 'GET', '/admin/tenants/acme/upstreams')).json?.['upstreams'] as { name: string }[];
      assert.deepEqual(mine.map((u) => u.name), ['demo'], 'a tenant sees only its own');

      const callThrough = async (g: TestGateway) => {
        const client = new Client({ name: 'tenant', version: '1' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${g.base}/u/acme/demo`)));
        const r = await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } });
        await client.close();
        return r.content;
      };
      assert.deepEqual(await callThrough(gw), [{ type: 'text', text: '42' }]);

      await gw.close();
      gw = await startTestGateway(config(file));
      assert.deepEqual(((await admin(gw, 'GET', '/admin/tenants/acme/upstreams')).json?.['upstreams'] as { name: string }[]).map((u) => u.name), ['demo']);
      assert.deepEqual(await callThrough(gw), [{ type: 'text', text: '42' }], 'the registration survived the restart');

      assert.equal((await admin(gw, 'DELETE', '/admin/tenants/acme/upstreams/demo')).status, 204);
      assert.equal((await admin(gw, 'DELETE', '/admin/tenants/acme/upstreams/demo')).status, 404);
      const gone = await send(`${gw.base}/u/acme/demo`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(gone.status, 404);
      const onDisk = JSON.parse(readFileSync(file, 'utf8')) as { upstreams: { tenant: string; name: string }[] };
      assert.deepEqual(onDisk.upstreams.map((u) => `${u.tenant}/${u.name}`), ['other/theirs']);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('checks a registered name again at every connect: one that rebinds to a refused address gets 502', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-reg-')), 'reg.json');
    let call = 0;
    const gw = await startTestGateway(config(file), { resolver: async () => (call++ === 0 ? ['93.184.215.14'] : ['127.0.0.2']) });
    try {
      assert.equal((await admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'flip', url: 'http://flip.test:8080/mcp' })).status, 201);
      const r = await send(`${gw.base}/u/acme/flip`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(r.status, 502);
      assert.equal(JSON.parse(r.body.toString()).error.data.sluice, 'SLUICE_ERR_UPSTREAM_REFUSED');
      assert.ok(gw.logs.some((l) => l['security'] === 'upstream-address-refused' && l['rule'] === 'loopback'));
    } finally {
      await gw.close();
    }
  });

  it('concurrent registrations: no duplicate name, the per-tenant limit holds, a DELETE stops the route at once', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-reg-')), 'reg.json');
    // A resolver that takes a moment: every request's checks have run before any adds.
    const slow = async (): Promise<string[]> => new Promise((r) => setTimeout(() => r(['127.0.0.1']), 20));
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ ...config(file), registrations: { ...config(file).registrations, maxPerTenant: 20 } } as never, { resolver: slow });
    try {
      const url = `http://svc.test:${up.port}/mcp`;
      const same = await Promise.all(Array.from({ length: 30 }, () => admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: 'one', url })));
      assert.equal(same.filter((r) => r.status === 201).length, 1, same.map((r) => r.status).join(','));
      assert.equal(same.filter((r) => r.status === 409).length, 29);
      const many = await Promise.all(Array.from({ length: 36 }, (_, i) => admin(gw, 'POST', '/admin/tenants/acme/upstreams', { name: `s${i}`, url })));
      assert.equal(many.filter((r) => r.status === 201).length, 19, 'one slot was taken by "one"');
      const list = (await admin(gw, 'GET', '/admin/tenants/acme/upstreams')).json as { upstreams: unknown[] };
      assert.equal(list.upstreams.length, 20);
      assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { upstreams: unknown[] }).upstreams.length, 20);
      const del = admin(gw, 'DELETE', '/admin/tenants/acme/upstreams/one');
      assert.equal((await del).status, 204);
      const after = await send(`${gw.base}/u/acme/one`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });
      assert.equal(after.status, 404);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
