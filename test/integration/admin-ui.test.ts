// The admin page (/ui) against a running Sluice with two HTTP routes (one with a replica that is
// down), a stdio route and a registration: who may see it (token, sign-in cookie, other schemes,
// loopback without a token), that no secret of the config reaches its data, and, in a real
// headless Chromium (Debian's chromium), that the figures it shows match /metrics, that a stream
// count moves while a client opens and closes SSE streams, that a refusal appears when a request
// comes with a foreign Origin, and that the page loads nothing from anywhere but the admin listener.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { randomBytes } from 'node:crypto';
import { freePort, JSON_HEADERS, rpc, send, startDemoUpstream, startTestGateway, type TestGateway } from '../helpers.ts';
import type { UpstreamKit } from '../../src/demo/upstream-kit.ts';

// What the functions handed to page.waitForFunction see: they run in the browser, not here.
declare const document: {
  querySelector(s: string): { textContent: string | null } | null;
  activeElement: { tagName: string } | null;
};

const TOKEN = 'admin-ui-token-4f1c9e0b7a2d';
const ENV_SECRET = 'stdio-env-secret-93b1d';
const CREDENTIAL = 'Bearer upstream-credential-7d2e40';
const CHROMIUM = '/usr/bin/chromium';
const STDIO = join(import.meta.dirname, '..', 'fixtures', 'stdio-server.ts');

/** Sum of a metric's samples for one route, from the Prometheus text. */
function sumFor(text: string, metric: string, route: string): number {
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${metric}{`) && line.includes(`route="${route}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

describe('admin page (/ui)', () => {
  let up: UpstreamKit;
  let other: UpstreamKit;
  let gw: TestGateway;
  let admin: string;
  let dir: string;
  const sessionKey = randomBytes(32).toString('base64url');
  before(async () => {
    up = await startDemoUpstream();
    other = await startDemoUpstream();
    dir = mkdtempSync(join(tmpdir(), 'sluice-ui-'));
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    gw = await startTestGateway({
      routes: [
        { path: '/a', upstream: [up.url, dead], healthCheck: { interval: '100ms', timeout: '200ms', unhealthyThreshold: 1 } },
        { path: '/b', upstream: other.url },
        { path: '/fed', servers: { crm: { upstream: other.url, upstreamCredential: { value: CREDENTIAL } } } } as never,
        {
          path: '/tools',
          upstream: { stdio: { command: process.execPath, args: [STDIO], env: { API_KEY: ENV_SECRET } } } as never,
        },
      ],
      sessions: { keys: [sessionKey] },
      admin: { listen: { host: '127.0.0.1', port: 0 }, token: TOKEN },
      registrations: { enabled: true, file: join(dir, 'registrations.json'), egress: { allow: ['127.0.0.1/32'] } },
    });
    admin = `http://127.0.0.1:${gw.gw.adminAddress!.port}`;
    const reg = await fetch(`${admin}/admin/tenants/acme/upstreams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'crm', url: other.url }),
    });
    assert.equal(reg.status, 201);
  });
  after(async () => {
    await gw.close();
    await up.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 401 without the token, with a wrong one and with a token of another scheme; the page and its stream alike', async () => {
    for (const path of ['/ui', '/ui/events', '/ui/state', '/ui/ui.js']) {
      const none = await fetch(`${admin}${path}`);
      assert.equal(none.status, 401, `${path} without a token`);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
      assert.match(await none.text(), /<label for="token">Admin token<\/label>/, 'the sign-in form');
      for (const authorization of [`Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, `Token ${TOKEN}`, 'Bearer wrong-token-000000']) {
        const r = await fetch(`${admin}${path}`, { headers: { authorization } });
        assert.equal(r.status, 401, `${path} with ${authorization.split(' ')[0]}`);
        await r.body?.cancel();
      }
      const cookie = await fetch(`${admin}${path}`, { headers: { cookie: 'sluice_admin_ui=1790000000.AAAA' } });
      assert.equal(cookie.status, 401, `${path} with a forged cookie`);
      await cookie.body?.cancel();
    }
    const ok = await fetch(`${admin}/ui`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-security-policy') ?? '', /default-src 'none'.*connect-src 'self'/);
    // A wrong token typed into the form: 401 again; the right one: a cookie that opens the page.
    const wrong = await fetch(`${admin}/ui/login`, { method: 'POST', body: new URLSearchParams({ token: 'nope' }), redirect: 'manual' });
    assert.equal(wrong.status, 401);
    const login = await fetch(`${admin}/ui/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' });
    assert.equal(login.status, 303);
    const setCookie = login.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const events = await fetch(`${admin}/ui/events`, { headers: { cookie: setCookie.split(';')[0]! } });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = events.body!.getReader();
    let text = '';
    while (!text.includes('event: state')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
  });

  it('answers 429 after 20 wrong tokens in a minute from one address, by form or by bearer, for the right one too; other addresses sign in', async () => {
    const { AdminUi } = await import('../../src/proxy/admin-ui.ts');
    const { createServer } = await import('node:http');
    const ui = new AdminUi({ token: TOKEN, host: '127.0.0.1', log: { warn: () => undefined }, snapshot: async () => ({}) as never });
    const server = createServer((req, res) => void ui.handle((req.url ?? '').split('?')[0]!, req, res, false));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const post = (token: string) => fetch(`${base}/ui/login`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
      for (let i = 0; i < 20; i++) assert.equal((await post(`wrong-${i}`)).status, 401);
      const limited = await post(TOKEN);
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      assert.equal((await fetch(`${base}/ui/events`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      // Per client address (issue 35): the real admin elsewhere still signs in.
      const { request } = await import('node:http');
      const from2 = (path: string, opts: { method: string; headers?: Record<string, string>; body?: string }) =>
        new Promise<number>((resolve, reject) => {
          const r = request(`${base}${path}`, { ...opts, localAddress: '127.0.0.2' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          r.once('error', reject);
          r.end(opts.body);
        });
      assert.equal(await from2('/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` }), 303);
      // Bearer guesses are counted too (they were never throttled): 20 wrong, then 429, the right one included.
      const head = (token: string) => fetch(`${base}/ui/events`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
      for (let i = 0; i < 20; i++) assert.equal((await head(`wrong-bearer-${i}`)).status, 401);
      assert.equal((await head(TOKEN)).status, 429);
      assert.equal(await from2('/ui/events', { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } }), 200);
    } finally {
      ui.close();
      server.close();
    }
  });

  it('holds at most 8 event streams at once: the 9th is 503 with Retry-After, and a closed one frees its place', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const open = await Promise.all(Array.from({ length: 8 }, () => fetch(`${admin}/ui/events`, { headers: auth })));
    try {
      assert.deepEqual(open.map((r) => r.status), Array(8).fill(200));
      const ninth = await fetch(`${admin}/ui/events`, { headers: auth });
      assert.equal(ninth.status, 503);
      assert.equal(ninth.headers.get('retry-after'), '5');
      await ninth.body?.cancel();
      await open.pop()!.body!.cancel();
      await new Promise((r) => setTimeout(r, 100));
      const again = await fetch(`${admin}/ui/events`, { headers: auth });
      assert.equal(again.status, 200);
      open.push(again);
    } finally {
      for (const r of open) await r.body?.cancel().catch(() => undefined);
    }
  });

  it('shows routes, kinds, replicas, processes and registrations, and no secret from the config', async () => {
    const r = await fetch(`${admin}/ui/state`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const raw = await r.text();
    const s = JSON.parse(raw) as {
      routes: { path: string; kind: string; replicas: { id: string; state: string }[]; processes?: { running: number; max: number } }[];
      registrations: { tenant: string; name: string; route: string }[];
      config: { admin: { token: string }; sessions: { keys: string[] } };
    };
    const kinds = Object.fromEntries(s.routes.map((x) => [x.path, x.kind]));
    assert.equal(kinds['/a'], 'relay');
    assert.equal(kinds['/b'], 'relay');
    assert.equal(kinds['/tools'], 'stdio');
    assert.ok(Object.values(kinds).includes('registered'));
    assert.deepEqual(s.routes.find((x) => x.path === '/tools')?.processes, { running: 0, max: 50 });
    assert.deepEqual(
      s.registrations.map((g) => [g.tenant, g.name]),
      [['acme', 'crm']],
    );
    assert.equal(kinds['/fed'], 'federated');
    // The admin listener's own refusals are listed too (the wrong tokens of the first test).
    const own = (JSON.parse(raw) as { refusals: { route: string; reason: string; status: number }[] }).refusals.filter(
      (f) => f.route === 'admin listener',
    );
    assert.ok(own.length >= 10 && own.every((f) => f.reason === 'admin-auth-failed' && f.status === 401), JSON.stringify(own.slice(0, 2)));
    for (const secret of [TOKEN, sessionKey, ENV_SECRET, CREDENTIAL, 'upstream-credential-7d2e40']) assert.ok(!raw.includes(secret), `a secret leaked: ${secret.slice(0, 6)}…`);
    assert.equal(s.config.admin.token, '••••••');
    assert.deepEqual(s.config.sessions.keys, ['••••••']);
  });

  it('in Chromium: signs in, matches /metrics, follows streams and refusals live, and loads nothing from elsewhere', async (t) => {
    assert.ok(existsSync(CHROMIUM), 'chromium is missing (scripts/setup.sh installs it)');
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', '--disable-background-networking'],
    });
    const clients: Client[] = [];
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 1400 });
      const requested: string[] = [];
      page.on('request', (req) => requested.push(req.url()));
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(String(e)));
      // Some traffic first, so the figures are not all zero.
      for (let i = 0; i < 7; i++) await send(`${gw.base}/b`, { method: 'POST', headers: JSON_HEADERS, body: rpc('ping') });

      const first = await page.goto(`${admin}/ui`);
      assert.equal(first?.status(), 401, 'the sign-in form, answered 401');
      await page.type('#token', TOKEN);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      await page.waitForSelector('#routes-table tbody tr[data-route="/a"]', { timeout: 10_000 }).catch((err: Error) => {
        throw new Error(`${err.message}; page errors: ${problems.join(' | ')}`);
      });

      // A replica marked down is shown down; the live one up.
      await page.waitForFunction(
        () => document.querySelector('#replicas-table tr[data-route="/a"] .state-down') !== null,
        { timeout: 10_000 },
      );
      const states = await page.$$eval('#replicas-table tbody tr[data-route="/a"] .state', (els) => els.map((e) => e.textContent));
      assert.deepEqual([...states].sort(), ['down', 'up']);

      // The requests shown per route are /metrics' counts once traffic stops.
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      const want = sumFor(metrics, 'sluice_requests_total', '/b');
      assert.ok(want >= 7);
      await page.waitForFunction(
        (n) => document.querySelector('#routes-table tr[data-route="/b"] .requests')?.textContent === String(n),
        { timeout: 5_000 },
        want.toLocaleString('en-US'),
      );

      // Two SDK clients open their standalone SSE streams on /b: the page counts them, then sees them go.
      const streams = () =>
        page.$eval('#routes-table tr[data-route="/b"] .streams', (e) => e.textContent ?? '');
      assert.equal(await streams(), '0');
      for (let i = 0; i < 2; i++) {
        const c = new Client({ name: `ui-${i}`, version: '1' });
        await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/b`)));
        clients.push(c);
      }
      await page.waitForFunction(
        () => document.querySelector('#routes-table tr[data-route="/b"] .streams')?.textContent === '2',
        { timeout: 5_000 },
      );
      const replicaStreams = await page.$eval(`#replicas-table tr[data-route="/b"] .streams`, (e) => e.textContent);
      assert.equal(replicaStreams, '2');
      for (const c of clients.splice(0)) await c.close();
      await page.waitForFunction(
        () => document.querySelector('#routes-table tr[data-route="/b"] .streams')?.textContent === '0',
        { timeout: 5_000 },
      );

      // A foreign Origin is refused at the public listener, and the refusal shows with its reason.
      const refused = await send(`${gw.base}/b`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, origin: 'https://evil.example' },
        body: rpc('tools/list'),
      });
      assert.equal(refused.status, 403);
      await page.waitForSelector('#refusals-table tr[data-reason="origin-rejected"]', { timeout: 5_000 });

      // Keyboard: the sections are reachable by links, every table has a caption.
      assert.equal(await page.$$eval('table', (ts) => ts.every((x) => x.querySelector('caption') !== null)), true);
      await page.keyboard.press('Tab');
      assert.ok(await page.evaluate(() => document.activeElement?.tagName === 'A' || document.activeElement?.tagName === 'BUTTON'));

      // SLUICE_SCREENSHOTS=<dir> keeps the picture after the run.
      const shot = join(process.env['SLUICE_SCREENSHOTS'] ?? dir, 'admin-ui.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
      // On a phone the page does not scroll sideways: wide tables scroll inside their own box.
      await page.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 2 });
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth <= 390));
      await page.screenshot({ path: join(process.env['SLUICE_SCREENSHOTS'] ?? dir, 'admin-ui-phone.png') });
      for (const u of requested) assert.ok(u.startsWith(`${admin}/ui`) || u.startsWith('data:'), `the page requested ${u}`);
      assert.ok(requested.some((u) => u.endsWith('/ui/events')), 'the live stream');
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
      await browser.close();
    }
  });
});

describe('admin page without a token', () => {
  it('is open on a loopback admin address and refused on any other', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url }], admin: { listen: { host: '127.0.0.1', port: 0 } } });
    try {
      const r = await fetch(`http://127.0.0.1:${gw.gw.adminAddress!.port}/ui`);
      assert.equal(r.status, 200);
      assert.match(await r.text(), /<title>Sluice admin<\/title>/);
    } finally {
      await gw.close();
      await up.close();
    }
    const { AdminUi } = await import('../../src/proxy/admin-ui.ts');
    const ui = new AdminUi({ token: '', host: '0.0.0.0', log: { warn: () => undefined }, snapshot: async () => ({}) as never });
    let status = 0;
    const res = { req: { method: 'GET' }, writeHead: (s: number) => ((status = s), res), end: () => undefined } as never;
    assert.equal(await ui.handle('/ui', { method: 'GET', headers: {} } as never, res, false), true);
    assert.equal(status, 404);
  });
});
