// The admin page (/ui) on the admin listener: plain HTML, CSS and one script served from the
// package (no build step, no CDN), a JSON snapshot (/ui/state) and a live stream of snapshots
// (/ui/events, one a second, at most MAX_WATCHERS at once, all served from one timer).
//
// Who may look: with admin.token set, only a caller who shows it — as a bearer token, or as the
// cookie /ui/login sets after the token was typed into the page's form (browsers cannot send
// a bearer header when they navigate). The cookie is an HMAC of its issue time under the token,
// valid 12 hours, HttpOnly and SameSite=Strict. Without a token the page is open on a loopback
// admin address (as /metrics is) and refused on any other: read-only is still too much to show
// the network.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { BodyBudget, readBody } from '../transport/read-body.ts';
import { tokenMatches } from './admin-server.ts';
import type { AdminSnapshot } from './admin-view.ts';
import { GuessThrottle } from './admin-throttle.ts';

const COOKIE = 'sluice_admin_ui';
const COOKIE_TTL_S = 12 * 3600;
const MAX_WATCHERS = 8;
const TICK_MS = 1000;
const LOGIN_BODY = 4096;
const LOGIN_BODIES = new BodyBudget(16 * LOGIN_BODY);

// Everything the page loads comes from here: no other origin, no inline script.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const ASSETS: Record<string, { type: string; file: string }> = {
  '/ui': { type: 'text/html; charset=utf-8', file: 'index.html' },
  '/ui/ui.css': { type: 'text/css; charset=utf-8', file: 'ui.css' },
  '/ui/ui.js': { type: 'text/javascript; charset=utf-8', file: 'ui.js' },
};
const assetCache = new Map<string, Buffer>();
function asset(file: string): Buffer {
  let b = assetCache.get(file);
  if (!b) assetCache.set(file, (b = readFileSync(new URL(`./admin-ui/${file}`, import.meta.url))));
  return b;
}

export interface AdminUiDeps {
  token: string;
  /** The admin listener's host: without a token the page is served only on loopback. */
  host: string;
  snapshot: () => Promise<AdminSnapshot>;
  log: { warn(o: object, msg: string): void };
  /** A refused sign-in or page request, for the page's own refusal list. */
  refused?: (req: IncomingMessage, reason: string, status: number) => void;
}

export class AdminUi {
  private readonly d: AdminUiDeps;
  private readonly watchers = new Set<ServerResponse>();
  /** Wrong tokens per client and scheme (the form here; bearer headers here and in the admin API). */
  readonly guesses = new GuessThrottle();
  private timer: NodeJS.Timeout | undefined;

  constructor(d: AdminUiDeps) {
    this.d = d;
  }

  /** Serves `path` if it is the page's; false when it is not (the admin API goes on). */
  async handle(path: string, req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<boolean> {
    if (path !== '/ui' && !path.startsWith('/ui/')) return false;
    if (!this.d.token && !isLoopback(this.d.host)) {
      send(res, 404, 'text/plain; charset=utf-8', 'the admin page needs admin.token on a non-loopback admin address\n');
      return true;
    }
    if (path === '/ui/login' && req.method === 'POST') return (this.login(req, res, secure), true);
    if (path === '/ui/logout' && req.method === 'POST') {
      res.writeHead(303, {
        location: '/ui',
        'set-cookie': `${COOKIE}=; Path=/ui; Max-Age=0`,
        'cache-control': 'no-store',
      });
      res.end();
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'GET only\n', { allow: 'GET' });
      return true;
    }
    const peer = req.socket.remoteAddress;
    const bearer = req.headers.authorization !== undefined;
    const wait = bearer ? this.guesses.wait('bearer', peer) : 0;
    if (wait > 0) {
      send(res, 429, 'text/plain; charset=utf-8', 'too many wrong tokens from this address; try again later\n', {
        'retry-after': String(wait),
      });
      return true;
    }
    // The stylesheet is the login form's too, and holds nothing about the gateway.
    if (!this.allowed(req) && path !== '/ui/ui.css') {
      if (bearer) this.guesses.failed('bearer', peer);
      this.d.log.warn(
        { security: 'admin-auth-failed', path, peer: req.socket.remoteAddress },
        'admin page: missing or wrong token',
      );
      // A first visit (no credential at all) is shown the form; a wrong credential is a refusal.
      if (req.headers.authorization !== undefined || cookieValue(req.headers.cookie, COOKIE) !== undefined)
        this.d.refused?.(req, 'admin-auth-failed', 401);
      send(res, 401, 'text/html; charset=utf-8', loginPage(''), { 'www-authenticate': 'Bearer realm="sluice-admin"' });
      return true;
    }
    if (path === '/ui/state') {
      send(res, 200, 'application/json', JSON.stringify(await this.d.snapshot()));
      return true;
    }
    if (path === '/ui/events' && req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' }).end();
      return true;
    }
    if (path === '/ui/events') return (this.watch(res), true);
    const a = ASSETS[path];
    if (!a) send(res, 404, 'text/plain; charset=utf-8', 'no such page\n');
    else send(res, 200, a.type, asset(a.file));
    return true;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  private allowed(req: IncomingMessage): boolean {
    const token = this.d.token;
    if (!token) return true;
    if (req.headers.authorization !== undefined) return tokenMatches(req.headers.authorization, token);
    const cookie = cookieValue(req.headers.cookie, COOKIE);
    return cookie !== undefined && cookieValid(cookie, token);
  }

  private async login(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const peer = req.socket.remoteAddress;
    const wait = this.guesses.wait('form', peer);
    if (wait > 0) {
      req.resume();
      send(res, 429, 'text/plain; charset=utf-8', 'too many wrong tokens from this address; try again later\n', {
        'retry-after': String(wait),
      });
      return;
    }
    let sent = '';
    try {
      const body = await readBody(req, {
        limit: LOGIN_BODY,
        deadlineMs: 10_000,
        budget: LOGIN_BODIES,
        held: (n) => LOGIN_BODIES.give(n),
      });
      sent = new URLSearchParams(body.toString('utf8')).get('token') ?? '';
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'the login form takes one field, token, under 4 KiB\n');
      return;
    }
    if (!this.d.token || !tokenMatches(`Bearer ${sent}`, this.d.token)) {
      this.guesses.failed('form', peer);
      this.d.log.warn(
        { security: 'admin-auth-failed', path: '/ui/login', peer: req.socket.remoteAddress },
        'admin page: wrong token',
      );
      this.d.refused?.(req, 'admin-auth-failed', 401);
      send(res, 401, 'text/html; charset=utf-8', loginPage(this.d.token ? 'That is not the admin token.' : ''));
      return;
    }
    const cookie = `${COOKIE}=${issueCookie(this.d.token)}; Path=/ui; Max-Age=${COOKIE_TTL_S}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    res.writeHead(303, { location: '/ui', 'set-cookie': cookie, 'cache-control': 'no-store' });
    res.end();
  }

  private watch(res: ServerResponse): void {
    if (this.watchers.size >= MAX_WATCHERS) {
      send(res, 503, 'text/plain; charset=utf-8', `at most ${MAX_WATCHERS} pages watch at once\n`, {
        'retry-after': '5',
      });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'content-security-policy': CSP,
    });
    res.write('retry: 2000\n\n');
    this.watchers.add(res);
    res.on('close', () => {
      this.watchers.delete(res);
      if (this.watchers.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    void this.push([res]);
    this.timer ??= setInterval(() => void this.push([...this.watchers]), TICK_MS);
    this.timer.unref();
  }

  /** One snapshot, written to every watcher (built once whatever their number). */
  private async push(to: ServerResponse[]): Promise<void> {
    if (to.length === 0) return;
    let data: string;
    try {
      data = JSON.stringify(await this.d.snapshot());
    } catch (err) {
      this.d.log.warn({ err }, 'admin page: snapshot failed');
      return;
    }
    for (const w of to) if (!w.writableEnded && w.writableLength < 1 << 20) w.write(`event: state\ndata: ${data}\n\n`);
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function mac(token: string, issued: string): Buffer {
  return createHmac('sha256', token).update(`sluice-admin-ui\0${issued}`).digest();
}

function issueCookie(token: string): string {
  const issued = String(Math.floor(Date.now() / 1000));
  return `${issued}.${mac(token, issued).toString('base64url')}`;
}

function cookieValid(value: string, token: string): boolean {
  const dot = value.indexOf('.');
  const issued = value.slice(0, dot);
  if (dot < 1 || !/^\d{1,12}$/.test(issued)) return false;
  const age = Date.now() / 1000 - Number(issued);
  if (age < -60 || age > COOKIE_TTL_S) return false;
  const sent = Buffer.from(value.slice(dot + 1), 'base64url');
  const want = mac(token, issued);
  return sent.length === want.length && timingSafeEqual(sent, want);
}

function loginPage(error: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice admin: sign in</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/ui.css"></head>
<body class="login"><main><h1>Sluice admin</h1>
<form method="post" action="/ui/login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
${error ? `<p role="alert" class="error">${error}</p>` : ''}
<p class="hint">The token is admin.token (or SLUICE_ADMIN_TOKEN) of this gateway.</p>
</form></main></body></html>
`;
}
