// `sluice doctor` against real deployment paths: the generated nginx, HAProxy and Caddy configs
// in front of `sluice probe` (every check passes; HAProxy keeps two probes' sessions apart),
// the same programs with one fault each (the doctor names exactly that check, with the fix),
// Sluice itself in front (every check passes), a plain MCP server (the probe-only checks are
// skipped and say why), and targets that cannot be examined (clear message, exit 3).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CheckId, Report } from '../../src/doctor/report.ts';
import { runDoctor } from '../../src/doctor/run-doctor.ts';
import { startProbe, type Probe } from '../../src/probe/probe-server.ts';
import { startFront, type Kind } from '../fixtures/front-proxy.ts';
import { startModernOnlyServer } from '../fixtures/modern-only-server.ts';
import { freePort, spawnSluice, startDemoUpstream, startFakeUpstream, startTestGateway } from '../helpers.ts';
import { hashApiKey } from '../../src/security/bearer.ts';

const BIN = new URL('../../bin/sluice.js', import.meta.url).pathname;
const ORIGIN = 'https://sluice-doctor.example';

/** Runs the CLI without blocking this process (the probes answer from it). */
function cli(args: string[], timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice ${args.join(' ')} ran over ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const notPassed = (r: Pick<Report, 'checks'>) => r.checks.filter((c) => c.status !== 'pass').map((c) => `${c.status} ${c.id}: ${c.detail}`);
const failing = (r: Pick<Report, 'checks'>) => r.checks.filter((c) => c.status === 'fail').map((c) => c.id);

describe('sluice doctor through the generated configs, run by the real programs', () => {
  let p1: Probe;
  let p2: Probe;
  before(async () => {
    p1 = await startProbe({ instance: 'p1' });
    p2 = await startProbe({ instance: 'p2' });
  });
  after(async () => {
    await p1.close();
    await p2.close();
  });

  for (const kind of ['nginx', 'haproxy', 'caddy'] as const) {
    it(`${kind}: every check passes`, async () => {
      const front = await startFront(kind, [p1]);
      try {
        const r = await runDoctor(front.url, { quick: true, idleSeconds: [3] });
        assert.deepEqual(notPassed(r), []);
        assert.equal(r.checks.length, 21);
        assert.deepEqual(r.probeInstances, ['p1']);
      } finally {
        await front.stop();
      }
    });
  }

  it('HAProxy with two probes: affinity learned from the initialize response holds for every session', async () => {
    const front = await startFront('haproxy', [p1, p2]);
    try {
      const r = await runDoctor(front.url, { quick: true, idleSeconds: [3], sessions: 12 });
      assert.deepEqual(notPassed(r), []);
      assert.deepEqual(r.probeInstances, ['p1', 'p2'], 'sessions were spread over both probes');
      assert.match(r.checks.find((c) => c.id === 'affinity')!.detail, /each answered by the instance that created it/);
    } finally {
      await front.stop();
    }
  });
});

interface Fault {
  name: string;
  kind: Kind;
  probes: 1 | 2;
  edit: (config: string) => string;
  expect: CheckId;
  /** The fix line the user would apply, on the program that has the fault. */
  fix: RegExp;
  idleSeconds?: number[];
  sessions?: number;
  /** Checks that still pass (without a session, the probe is asked statelessly). */
  stillPass?: CheckId[];
}

const FAULTS: Fault[] = [
  {
    name: "nginx's default buffering (HTTP/1.0 upstream, proxy_buffering on)",
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace('proxy_buffering off;', '').replace('proxy_http_version 1.1;', '').replace('proxy_set_header Connection "";', ''),
    expect: 'sse-unbuffered',
    fix: /proxy_buffering off/,
  },
  {
    name: 'a read timeout shorter than a silent tool call (nginx proxy_read_timeout 2s; 60s in real life)',
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace('proxy_read_timeout 3600s;', 'proxy_read_timeout 2s;'),
    expect: 'idle-survival',
    fix: /proxy_read_timeout 3600s/,
    idleSeconds: [4],
  },
  {
    name: 'gzip on SSE (nginx gzip_types text/event-stream)',
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace('gzip off;', 'gzip on; gzip_types text/event-stream; gzip_min_length 0;'),
    expect: 'sse-compression',
    fix: /gzip off/,
  },
  {
    name: 'Mcp-Session-Id dropped on requests (nginx proxy_set_header Mcp-Session-Id "")',
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace('proxy_buffering off;', 'proxy_buffering off;\n        proxy_set_header Mcp-Session-Id "";'),
    expect: 'session-id-roundtrip',
    fix: /proxy_set_header Mcp-Session-Id ""/,
    stillPass: ['sse-unbuffered', 'sse-compression', 'idle-survival', 'body-limit', 'authorization-forwarded', 'mcp-param-forwarded'],
  },
  {
    name: 'Mcp-Session-Id hidden on responses (Caddy header_down -Mcp-Session-Id)',
    kind: 'caddy',
    probes: 1,
    edit: (c) => c.replace(/reverse_proxy ([^\n{]+)\{/, 'reverse_proxy $1{\n\t\t\theader_down -Mcp-Session-Id'),
    expect: 'session-id-roundtrip',
    fix: /header_down -Mcp-Session-Id/,
    stillPass: ['sse-unbuffered', 'sse-compression', 'idle-survival', 'body-limit', 'authorization-forwarded', 'mcp-param-forwarded'],
  },
  {
    name: 'MCP-Protocol-Version dropped (HAProxy http-request del-header)',
    kind: 'haproxy',
    probes: 1,
    edit: (c) => c.replace(/(backend [^\n]*\n)/, '$1    http-request del-header mcp-protocol-version\n'),
    expect: 'protocol-version-forwarded',
    fix: /del-header mcp-protocol-version/i,
  },
  {
    name: 'no Access-Control-Expose-Headers (nginx)',
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace(/\n\s*add_header Access-Control-Expose-Headers[^\n]*/, ''),
    expect: 'cors-expose-session-id',
    fix: /add_header Access-Control-Expose-Headers "Mcp-Session-Id/,
  },
  {
    name: 'OAuth metadata not routed (nginx serving only the MCP location)',
    kind: 'nginx',
    probes: 1,
    edit: (c) => c.replace(/\n\s*# OAuth protected-resource metadata[\s\S]*?\n    \}\n/, '\n'),
    expect: 'oauth-discovery',
    fix: /location \^~ \/\.well-known\/oauth-protected-resource/,
  },
  {
    name: 'affinity hashed on Mcp-Session-Id across two probes (HAProxy balance hdr)',
    kind: 'haproxy',
    probes: 2,
    edit: (c) => c.replace(/\n\s*stick[^\n]*/g, '').replace(/balance [^\n]*/, 'balance hdr(mcp-session-id)'),
    expect: 'affinity',
    fix: /stick store-response res\.hdr\(mcp-session-id\)/,
    // Half the sessions hash away from their creator: 16 make a miss (all land right) 1 in 65,536.
    sessions: 16,
  },
];

const PLATFORM: Record<Kind, 'nginx' | 'haproxy' | 'caddy'> = { nginx: 'nginx', haproxy: 'haproxy', caddy: 'caddy' };

describe('sluice doctor names the one fault of a broken front', () => {
  let probes: Probe[];
  before(async () => {
    probes = [await startProbe({ instance: 'f1' }), await startProbe({ instance: 'f2' })];
  });
  after(async () => {
    for (const p of probes) await p.close();
  });

  for (const f of FAULTS) {
    it(f.name, async () => {
      let edited = '';
      const front = await startFront(f.kind, probes.slice(0, f.probes), (c) => {
        edited = f.edit(c);
        assert.notEqual(edited, c, 'the fault was written into the config');
        return edited;
      });
      try {
        const r = await runDoctor(front.url, { quick: true, idleSeconds: f.idleSeconds ?? [3], ...(f.sessions ? { sessions: f.sessions } : {}) });
        assert.deepEqual(failing(r), [f.expect], notPassed(r).join('\n'));
        const check = r.checks.find((c) => c.id === f.expect)!;
        assert.ok(check.fix, 'a failure comes with its fix');
        assert.match(check.fix[PLATFORM[f.kind]], f.fix);
        for (const platform of ['nginx', 'caddy', 'haproxy', 'traefik', 'aws-alb', 'cloudflare'] as const) assert.ok(check.fix[platform].length > 10, platform);
        for (const id of f.stillPass ?? []) assert.equal(r.checks.find((c) => c.id === id)!.status, 'pass', id);
        if (f.stillPass) assert.deepEqual(r.probeInstances, ['f1'], 'the stateless calls reached the probe');
      } finally {
        await front.stop();
      }
    });
  }

  it('nginx round-robin over two replicas with no affinity: affinity fails, and nothing that is only its consequence', async () => {
    const front = await startFront('nginx', probes, (c) => c.replace(/ backup;/g, ';'));
    try {
      const r = await runDoctor(front.url, { quick: true, idleSeconds: [2] });
      assert.deepEqual(failing(r), ['affinity'], notPassed(r).join('\n'));
      const by = Object.fromEntries(r.checks.map((c) => [c.id, c]));
      assert.match(by['affinity']!.detail, /sessions lost their replica/);
      assert.ok(by['affinity']!.fix?.nginx, 'the fix comes with it');
      for (const id of ['resume', 'last-event-id-forwarded'] as const) {
        assert.equal(by[id]!.status, 'skip', id);
        assert.match(by[id]!.detail, /see affinity/, id);
      }
      // The checks a session broke before run as stateless calls to the probe, and pass.
      for (const id of ['authorization-forwarded', 'protocol-version-forwarded', 'sse-unbuffered', 'body-limit'] as const)
        assert.equal(by[id]!.status, 'pass', `${id}: ${by[id]!.detail}`);
      assert.notEqual(by['notification-202']!.status, 'fail', by['notification-202']!.detail);
      assert.deepEqual(r.probeInstances, ['f1', 'f2']);
    } finally {
      await front.stop();
    }
  });

  it('nginx redirecting /mcp to /mcp/ (return 307), which is no MCP server: no-redirect fails with the fix, exit 1; the rest say why they did not run', async () => {
    const front = await startFront('nginx', probes.slice(0, 1), (c) => c.replace('    location /mcp {', '    location = /mcp { return 307 /mcp/; }\n    location /mcp {'));
    try {
      const r = await runDoctor(front.url, { quick: true, idleSeconds: [2] });
      assert.deepEqual(failing(r), ['no-redirect']);
      const check = r.checks.find((c) => c.id === 'no-redirect')!;
      assert.match(check.detail, /^POST \/mcp was answered 307 → http:\/\/127\.0\.0\.1:\d+\/mcp\/, and .* does not answer like an MCP server/);
      assert.ok(r.checks.filter((c) => c.id !== 'no-redirect').every((c) => c.status === 'skip' && /redirects \(see no-redirect\)/.test(c.detail)));
      const run = await cli(['doctor', front.url, '--quick']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /no-redirect/);
      assert.match(run.stdout, /`location \/mcp` \(no trailing slash\)/, 'the nginx fix is printed');
    } finally {
      await front.stop();
    }
  });

  it('full run: silent streams are cut by a short read timeout, a stream with regular events survives (heartbeats help)', async () => {
    const front = await startFront('nginx', probes.slice(0, 1), (c) => c.replace('proxy_read_timeout 3600s;', 'proxy_read_timeout 3s;'));
    try {
      const r = await runDoctor(front.url, { quick: false, idleSeconds: [4, 7] });
      assert.deepEqual(failing(r), ['idle-survival'], notPassed(r).join('\n'));
      const detail = r.checks.find((c) => c.id === 'idle-survival')!.detail;
      assert.match(detail, /^4 s silent: cut after 3\.\d s .*; 7 s silent: cut after 3\.\d s .*; a stream with an event every 2 s lived 8\.\d s: heartbeats keep streams open$/);
    } finally {
      await front.stop();
    }
  });

  it('exits 1 and prints the failure with its fixes (CLI, --json)', async () => {
    const front = await startFront('nginx', probes.slice(0, 1), (c) => c.replace('gzip off;', 'gzip on; gzip_types text/event-stream; gzip_min_length 0;'));
    try {
      const r = await cli(['doctor', front.url, '--quick', '--idle', '2', '--json']);
      assert.equal(r.code, 1, r.stderr);
      const report = JSON.parse(r.stdout) as { target: string; checks: { id: string; status: string; detail: string; fix: Record<string, string> | null }[] };
      assert.equal(report.target, front.url);
      const c = report.checks.find((x) => x.id === 'sse-compression')!;
      assert.equal(c.status, 'fail');
      assert.match(c.detail, /gzip-encoded/);
      assert.deepEqual(Object.keys(c.fix!).sort(), ['aws-alb', 'caddy', 'cause', 'cloudflare', 'haproxy', 'nginx', 'traefik']);
      assert.ok(report.checks.every((x) => ['pass', 'fail', 'warn', 'skip'].includes(x.status) && typeof x.detail === 'string'));
    } finally {
      await front.stop();
    }
  });
});

describe('sluice doctor through Sluice, against plain servers, and against targets it cannot examine', () => {
  it('Sluice as the OAuth resource server in front of the probe: discovery passes, the probe never sees the client token', async () => {
    const probe = await startProbe({ instance: 'rs' });
    const port = await freePort();
    const resource = `http://127.0.0.1:${port}/mcp`;
    const gw = await startTestGateway({
      listen: [{ host: '127.0.0.1', port }],
      routes: [{ path: '/mcp', upstream: probe.url, auth: { mode: 'resource-server', resource, apiKeys: [{ name: 'doctor', sha256: hashApiKey('doctor-api-key') }], upstreamCredential: { value: 'Bearer probe-side' } } }],
    });
    try {
      const r = await runDoctor(resource, { quick: true, idleSeconds: [2], headers: { authorization: 'Bearer doctor-api-key' } });
      const oauth = r.checks.find((c) => c.id === 'oauth-discovery')!;
      assert.equal(oauth.status, 'pass', oauth.detail);
      assert.match(oauth.detail, /names resource http:\/\/127\.0\.0\.1:\d+\/mcp .*401 with resource_metadata/);
      assert.equal(r.checks.find((c) => c.id === 'authorization-forwarded')!.status, 'warn', 'a gateway replacing credentials is named, not failed');
      assert.deepEqual(failing(r), [], notPassed(r).join('\n'));
      assert.ok(!probe.records.some((rec) => rec.headers['authorization'] === 'Bearer doctor-api-key'));
    } finally {
      await gw.close();
      await probe.close();
    }
  });

  it('Sluice in front of two probes (quick form, --allow-origin): every check passes (CLI, default --quick)', async () => {
    const p1 = await startProbe({ instance: 's1' });
    const p2 = await startProbe({ instance: 's2' });
    const port = await freePort();
    const gw = await spawnSluice(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', p1.url, '--upstream', p2.url, '--allow-origin', ORIGIN], `127.0.0.1:${port}/mcp`);
    try {
      const r = await cli(['doctor', `http://127.0.0.1:${port}/mcp`, '--quick', '--json', '--header', 'Authorization: Bearer doctor-cli-token']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const report = JSON.parse(r.stdout) as Report;
      assert.deepEqual(notPassed(report), []);
      assert.ok(report.durationMs < 30_000, `quick run took ${report.durationMs} ms`);
      assert.match(report.checks.find((c) => c.id === 'idle-survival')!.detail, /^10 s silent: survived/);
      assert.deepEqual(report.probeInstances, ['s1', 's2']);
      assert.equal(report.checks.find((c) => c.id === 'authorization-forwarded')!.detail, 'the given Authorization reached the server unchanged');
      assert.ok(p1.records.concat(p2.records).some((rec) => rec.headers['authorization'] === 'Bearer doctor-cli-token'), 'the probe saw the given token');
    } finally {
      await gw.stop();
      await p1.close();
      await p2.close();
    }
  });

  it('a plain MCP server: runs what needs no probe, skips the rest and says why (CLI, --markdown)', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url, cors: { allowOrigins: ['*'] } }] });
    try {
      // The demo server refuses origins that are not loopback (its DNS-rebinding defence).
      const report = await runDoctor(`${gw.base}/mcp`, { quick: true, origin: 'http://localhost:5173' });
      const byStatus = (s: string) => report.checks.filter((c) => c.status === s).map((c) => c.id);
      assert.deepEqual(byStatus('fail'), []);
      assert.deepEqual(byStatus('skip').sort(), ['accept-forwarded', 'authorization-forwarded', 'body-limit', 'host-forwarded', 'idle-survival', 'last-event-id-forwarded', 'mcp-param-forwarded', 'oauth-discovery', 'protocol-version-forwarded', 'resume', 'sse-unbuffered']);
      for (const c of report.checks.filter((x) => x.status === 'skip' && x.id !== 'oauth-discovery')) assert.match(c.detail, /needs `sluice probe`/);
      assert.match(report.checks.find((c) => c.id === 'oauth-discovery')!.detail, /^no OAuth here/);
      for (const id of ['session-id-roundtrip', 'unknown-session-404', 'notification-202', 'affinity', 'cors-preflight', 'cors-expose-session-id', 'sse-compression'] as const) {
        assert.equal(report.checks.find((c) => c.id === id)!.status, 'pass', id);
      }
      assert.deepEqual(report.probeInstances, []);
      const md = await cli(['doctor', `${gw.base}/mcp`, '--quick', '--markdown', '--origin', 'http://localhost:5173']);
      assert.equal(md.code, 0, md.stderr);
      assert.match(md.stdout, /^# sluice doctor: /);
      assert.match(md.stdout, /\| SKIP \| `sse-unbuffered` \| needs `sluice probe`/);
      assert.match(md.stdout, /\| PASS \| `unknown-session-404` \|/);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('a stateless-only 2026-07-28 server behind Sluice: the session checks say there are none, 405 on GET passes', async () => {
    const modern = await startModernOnlyServer();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: modern.url, cors: { allowOrigins: [ORIGIN] } }] });
    try {
      const report = await runDoctor(`${gw.base}/mcp`, { quick: true });
      const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
      assert.deepEqual(report.checks.filter((c) => c.status === 'fail'), []);
      for (const id of ['no-redirect', 'method-405', 'error-body-intact', 'cors-preflight', 'cors-expose-session-id']) assert.equal(status[id], 'pass', id);
      assert.match(report.checks.find((c) => c.id === 'session-id-roundtrip')!.detail, /a 2026-07-28 request was answered 200: a stateless server/);
      for (const id of ['notification-202', 'affinity', 'resume', 'unknown-session-404']) assert.match(report.checks.find((c) => c.id === id)!.detail, /stateless 2026-07-28 server has no sessions/, id);
      assert.match(report.checks.find((c) => c.id === 'method-405')!.detail, /^GET answered 405/);
    } finally {
      await gw.close();
      await modern.close();
    }
  });

  it('a redirect in front is named, and the checks run where it points (nginx return 307)', async () => {
    const probe = await startProbe({ instance: 'r1' });
    const front = await startFront('nginx', [probe], (c) => c.replace('location /mcp {', `location /mcp {\n        return 307 ${probe.url};`));
    try {
      const r = await runDoctor(front.url, { quick: true, idleSeconds: [2] });
      assert.deepEqual(failing(r), ['no-redirect']);
      assert.match(r.checks.find((c) => c.id === 'no-redirect')!.detail, new RegExp(`^POST /mcp was answered 307 → ${probe.url}; the checks below ran against ${probe.url}`));
      assert.equal(r.checks.find((c) => c.id === 'sse-unbuffered')!.status, 'pass');
    } finally {
      await front.stop();
      await probe.close();
    }
  });

  it('unreachable, not MCP, TLS failures: one clear line and exit 3, never a stack trace', async () => {
    const closed = await freePort();
    const html = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Welcome to nginx!</body></html>'));
    const silent = await startFakeUpstream(() => new Promise(() => {}));
    const dir = mkdtempSync(join(tmpdir(), 'sluice-doctor-tls-'));
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const tls = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('nothing here'));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const tlsUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/mcp`;
    try {
      const cases: [string[], RegExp][] = [
        [[`http://127.0.0.1:${closed}/mcp`], /^sluice doctor: cannot reach http:\/\/127\.0\.0\.1:\d+\/mcp: connection refused/],
        [[`${html.url}/mcp`], /^sluice doctor: .* does not answer like an MCP server: initialize was answered 200 text\/html "<html><body>Welcome to nginx!/],
        [[`${silent.url}/mcp`], /^sluice doctor: .* accepted the connection but did not answer initialize within 8 s\n/],
        [[tlsUrl], /^sluice doctor: cannot reach https:.*: TLS error: self[- ]signed certificate/],
        [[`https://127.0.0.1:${new URL(html.url).port}/mcp`], /^sluice doctor: cannot reach https:.*: TLS error: .*plain-http port/],
        // Past TLS with the CA given (or verification off), the server itself is judged.
        [[tlsUrl, '--ca', join(dir, 'cert.pem')], /^sluice doctor: .* does not answer like an MCP server: initialize was answered 404/],
        [[tlsUrl, '--insecure'], /^sluice doctor: .* does not answer like an MCP server: initialize was answered 404/],
      ];
      for (const [args, message] of cases) {
        const r = await cli(['doctor', ...args, '--quick']);
        assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.equal(r.stdout, '');
      }
      const usage = await cli(['doctor']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /doctor needs exactly one URL/);
      const badIdle = await cli(['doctor', tlsUrl, '--idle', 'soon']);
      assert.equal(badIdle.code, 2);
    } finally {
      tls.close();
      await html.close();
      await silent.close();
    }
  });
});
