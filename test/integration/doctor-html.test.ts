// `sluice doctor URL --html FILE`: the report as one self-contained page, written for a real
// nginx path that buffers SSE and cuts silent streams, and for a good one, both opened in a real
// headless Chromium: the timeline shows the held events and the cut there and not here, the
// fixes are the chosen platform's, and the page loads nothing at all.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProbe, type Probe } from '../../src/probe/probe-server.ts';
import { startFront } from '../fixtures/front-proxy.ts';
import { runProgram } from '../helpers.ts';

const BIN = new URL('../../bin/sluice.js', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';

/** The CLI as a user runs it, without blocking this process (the probe answers from it). */
const cli = (args: string[]) => runProgram(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 90_000 });

interface Seen {
  held: string | null;
  lags: number[];
  survived: (string | null)[];
  fixes: string[];
  requests: string[];
}

describe('sluice doctor --html', () => {
  let probe: Probe;
  let dir: string;
  before(async () => {
    probe = await startProbe({ instance: 'h1' });
    dir = mkdtempSync(join(tmpdir(), 'sluice-doctor-html-'));
  });
  after(async () => {
    await probe.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function report(name: string, edit: (c: string) => string): Promise<{ file: string; code: number }> {
    const front = await startFront('nginx', [probe], edit);
    try {
      const file = join(dir, `${name}.html`);
      const r = await cli(['doctor', front.url, '--quick', '--idle', '3', '--html', file, '--platform', 'nginx']);
      assert.match(r.stderr, new RegExp(`wrote ${file}`));
      assert.match(r.stdout, /sse-unbuffered/, 'the terminal report is printed as before');
      return { file, code: r.code };
    } finally {
      await front.stop();
    }
  }

  it('a buffering nginx with a short read timeout and a good one: the difference shows in Chromium', async (t) => {
    const bad = await report('buffered', (c) =>
      c
        .replace('proxy_buffering off;', '')
        .replace('proxy_http_version 1.1;', '')
        .replace('proxy_set_header Connection "";', '')
        .replace('proxy_read_timeout 3600s;', 'proxy_read_timeout 2s;'),
    );
    const good = await report('good', (c) => c);
    assert.equal(bad.code, 1);
    assert.equal(good.code, 0);
    const html = readFileSync(bad.file, 'utf8');
    assert.doesNotMatch(html, /<script|\ssrc=|href="http/i, 'self-contained: no script, nothing fetched');

    assert.ok(existsSync(CHROMIUM), 'chromium is missing (scripts/setup.sh installs it)');
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    const look = async (file: string, shot: string): Promise<Seen> => {
      const page = await browser.newPage();
      await page.setViewport({ width: 1000, height: 900 });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${file}`);
      const seen = await page.evaluate(() => {
        const d = (globalThis as unknown as { document: { querySelector(s: string): El | null; querySelectorAll(s: string): El[] } }).document;
        interface El {
          getAttribute(n: string): string | null;
          textContent: string | null;
        }
        const sse = d.querySelector('figure[data-check="sse-unbuffered"]');
        const lags = [...d.querySelectorAll('figure[data-check="sse-unbuffered"] circle.received')].map(
          (c) => Number(c.getAttribute('data-received-ms')) - Number(c.getAttribute('data-sent-ms')),
        );
        const survived = [...d.querySelectorAll('figure[data-check="idle-survival"]')].map((f) => f.getAttribute('data-survived'));
        const fixes = [...d.querySelectorAll('.fix dt')].map((x) => x.textContent ?? '');
        return { held: sse?.getAttribute('data-held') ?? null, lags, survived, fixes };
      });
      const dest = join(process.env['SLUICE_SCREENSHOTS'] ?? dir, shot);
      await page.screenshot({ path: dest, fullPage: false });
      t.diagnostic(`screenshot: ${dest}`);
      await page.close();
      return { ...seen, requests };
    };
    try {
      const b = await look(bad.file, 'doctor-buffered.png');
      const g = await look(good.file, 'doctor-good.png');
      assert.equal(b.held, 'true');
      assert.equal(g.held, 'false');
      assert.equal(b.lags.length, 6);
      assert.equal(g.lags.length, 6);
      assert.ok(Math.max(...b.lags) > 300, `held events: ${b.lags.join(' ')}`);
      assert.ok(Math.max(...g.lags) < 300, `events as sent: ${g.lags.join(' ')}`);
      assert.deepEqual(b.survived, ['false'], 'the silent call was cut');
      assert.deepEqual(g.survived, ['true']);
      assert.ok(b.fixes.includes('Fix on nginx'));
      assert.ok(!b.fixes.some((f) => /Caddy|HAProxy|Traefik|Cloudflare|ALB/.test(f)), 'only the chosen platform');
      assert.equal(g.fixes.length, 0, 'nothing to fix on the good path');
      for (const s of [b, g]) assert.deepEqual(s.requests.filter((u) => !u.startsWith('file://')), [], 'the page fetched nothing');
    } finally {
      await browser.close();
    }
  });

  it('a URL that cannot be examined (exit 3) still gets a page that says why', async () => {
    const file = join(dir, 'unreachable.html');
    const r = await cli(['doctor', 'http://127.0.0.1:9/mcp', '--quick', '--html', file]);
    assert.equal(r.code, 3);
    const html = readFileSync(file, 'utf8');
    assert.match(html, /could not be examined/);
    assert.match(html, /cannot reach http:\/\/127\.0\.0\.1:9\/mcp/);
    assert.doesNotMatch(html, /<script/i);
  });

  it('refuses an unknown platform and --platform without --html (exit 2)', async () => {
    const a = await cli(['doctor', 'http://127.0.0.1:9/mcp', '--html', join(dir, 'x.html'), '--platform', 'iis']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--platform "iis": one of nginx, caddy, haproxy, traefik, aws-alb, cloudflare/);
    const b = await cli(['doctor', 'http://127.0.0.1:9/mcp', '--platform', 'nginx']);
    assert.equal(b.code, 2);
  });
});
