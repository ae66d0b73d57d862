// The command line as a user runs it: --help, validate, quick serve.
import assert from 'node:assert/strict';
import { hashApiKey } from '../../src/security/bearer.ts';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { KeyRing } from '../../src/session/key-ring.ts';
import { hashPrincipal, sealSession } from '../../src/session/token.ts';
import { newKeyText } from '../../src/session/key-ring.ts';
import { startSluice } from '../fleet.ts';
import { startDemoUpstream, waitFor } from '../helpers.ts';

const BIN = new URL('../../bin/sluice.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'sluice-')), 'sluice.yaml');
  writeFileSync(p, text);
  return p;
}

describe('sluice CLI', () => {
  it('refuses a bad SLUICE_SESSION_KEYS with a clear message and exit 1', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--upstream', 'http://127.0.0.1:9/mcp', '--listen', '127.0.0.1:0'], { encoding: 'utf8', env: { ...process.env, SLUICE_SESSION_KEYS: 'short' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^sluice: SLUICE_SESSION_KEYS: session key 1 is 3 bytes/);
    assert.doesNotMatch(r.stderr, /at .*key-ring\.ts/, 'no stack trace');
  });

  it('sessions new-key and decode show what a token holds, and refuse it under other keys', () => {
    const key = run('sessions', 'new-key').stdout.trim();
    assert.equal(Buffer.from(key, 'base64url').length, 32);
    const principal = 'https://issuer.example|alice';
    const token = sealSession(KeyRing.parse(key), { route: '/mcp', replica: 'http://127.0.0.1:3001/mcp', upstreamSession: 'up-123', principal: hashPrincipal(principal), issuedAt: 1_790_000_000 });
    const ok = spawnSync(process.execPath, [BIN, 'sessions', 'decode', token, `--principal=${principal}`], { encoding: 'utf8', env: { ...process.env, SLUICE_SESSION_KEYS: key } });
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { route: '/mcp', replica: 'http://127.0.0.1:3001/mcp', upstreamSession: 'up-123', principalHash: hashPrincipal(principal).toString('hex'), issuedAt: '2026-09-21T14:13:20.000Z' });
    // --keys=… form: a base64url key may begin with "-".
    const other = run('sessions', 'decode', token, `--keys=${run('sessions', 'new-key').stdout.trim()}`, `--principal=${principal}`);
    assert.equal(other.status, 1);
    assert.match(other.stderr, /not a valid session token/);
    assert.equal(run('sessions', 'decode', token, `--keys=${key}`).status, 1, 'bound to a principal: does not open without it');
    assert.equal(run('sessions', 'decode', token, '--keys=short').status, 2);
  });

  it('auth new-key prints a key and its hash; hash-key hashes an argument or stdin', () => {
    const made = run('auth', 'new-key');
    assert.equal(made.status, 0, made.stderr);
    const [, key, hash] = /^key: +(sk-sluice-\S+)\nsha256: ([0-9a-f]{64})\n$/.exec(made.stdout) ?? [];
    assert.ok(key && hash, made.stdout);
    assert.equal(hash, hashApiKey(key));
    assert.equal(run('auth', 'hash-key', key).stdout.trim(), hash);
    const piped = spawnSync(process.execPath, [BIN, 'auth', 'hash-key'], { encoding: 'utf8', input: `${key}\n` });
    assert.equal(piped.stdout.trim(), hash, 'from stdin, the trailing newline dropped');
    assert.equal(run('auth', 'frobnicate').status, 2);
  });

  it('prints help', () => {
    const r = run('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /sluice serve --upstream URL/);
  });

  it("npx sluice in the checkout prints no npm warning, even on a system Node older than the project's (issue 35)", () => {
    const root = new URL('../..', import.meta.url).pathname;
    // The PATH a user's shell has: npm scripts put the project's Node 24 first; a user's has the system's.
    const path = (process.env['PATH'] ?? '').split(':').filter((d) => !d.includes('node_modules')).join(':');
    const r = spawnSync('npx', ['sluice', '--version'], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: path } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    assert.doesNotMatch(r.stderr, /npm warn/i);
  });

  it('--help after any command prints that command\'s help and exits 0 (issue 35)', async () => {
    for (const [command, usage] of [
      ['serve', /sluice serve --stdio .*-- COMMAND/],
      ['doctor', /sluice doctor URL/],
      ['check-upstream', /sluice check-upstream URL/],
      ['validate', /sluice validate sluice\.yaml/],
    ] as const) {
      for (const flag of command === 'serve' ? ['--help', '-h'] : ['--help']) {
        const r = run(command, '--upstream', 'http://127.0.0.1:9/mcp', flag);
        assert.equal(r.status, 0, `${command} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, usage);
        assert.doesNotMatch(r.stdout, /sluice config nginx/, 'only that command');
        assert.equal(r.stderr, '');
      }
    }
    // After `--` the words are a stdio server's own: its --help is not Sluice's.
    const { asksHelp } = await import('../../src/cli/help.ts');
    assert.equal(asksHelp(['--stdio', '--', 'node', 'server.js', '--help']), false);
    assert.equal(asksHelp(['--stdio', '-h', '--', 'node']), true);
  });

  it('validate accepts a good file', () => {
    const r = run('validate', file('routes:\n  - path: /mcp\n    upstream: http://127.0.0.1:3000/mcp\ntimeouts:\n  heartbeat: 10s\n'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok \(1 listener\(s\), 1 route\(s\)\)/);
  });

  const bad: [string, string, RegExp][] = [
    ['unknown field', 'routes:\n  - path: /mcp\n    upstream: http://127.0.0.1:3000/mcp\ntimeout:\n  connect: 1s\n', /\(top level\): unknown field "timeout"/],
    ['bad scheme', 'routes:\n  - path: /mcp\n    upstream: ftp://127.0.0.1/mcp\n', /routes\[0\]\.upstream: scheme must be http or https/],
    ['bad duration', 'routes:\n  - path: /mcp\n    upstream: http://127.0.0.1:3000/mcp\ntimeouts:\n  connect: soon\n', /timeouts\.connect: "soon" is not a duration/],
    ['bad size', 'routes:\n  - path: /mcp\n    upstream: http://127.0.0.1:3000/mcp\nlimits:\n  body: lots\n', /limits\.body: "lots" is not a size/],
    ['relative path', 'routes:\n  - path: mcp\n    upstream: http://127.0.0.1:3000/mcp\n', /routes\[0\]\.path: must be an absolute path/],
    ['no routes', 'listen:\n  - port: 1\n', /routes: /],
    ['duplicate route', 'routes:\n  - path: /a\n    upstream: http://127.0.0.1:1/\n  - path: /a\n    upstream: http://127.0.0.1:2/\n', /routes\[1\]\.path: duplicate route path/],
    ['bad cidr', 'routes:\n  - path: /a\n    upstream: http://127.0.0.1:1/\ntrustedProxies: [10.0.0.0/99]\n', /trustedProxies\[0\]: must be an IP address or CIDR/],
    ['unset env', 'routes:\n  - path: /a\n    upstream: ${SLUICE_TEST_UNSET_VAR}\n', /environment variable SLUICE_TEST_UNSET_VAR is not set/],
    ['yaml syntax', 'routes: [\n', /YAML:/],
    ['resource-server without its public URL', 'routes:\n  - path: /a\n    upstream: http://127.0.0.1:1/\n    auth: { mode: resource-server, issuer: "https://login.example.com" }\n', /routes\[0\]\.auth\.resource: resource-server mode needs the public URL/],
    ['unset credential variable', 'routes:\n  - path: /a\n    upstream: http://127.0.0.1:1/\n    auth: { mode: resource-server, resource: "https://m.example/a", issuer: "https://login.example.com", upstreamCredential: { valueEnv: SLUICE_TEST_UNSET_CRED } }\n', /routes\[0\]\.auth\.upstreamCredential\.valueEnv: environment variable SLUICE_TEST_UNSET_CRED is not set/],
  ];
  for (const [what, text, expected] of bad) {
    it(`validate names the bad field: ${what}`, () => {
      const r = run('validate', file(text));
      assert.equal(r.status, 1);
      assert.match(r.stderr, expected);
    });
  }

  it('validate accepts a stdio route and warns when its command is not on PATH', () => {
    const good = run('validate', file(`routes:\n  - path: /s\n    upstream:\n      stdio: { command: node, args: [server.js] }\n`));
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stderr, '');
    const missing = run('validate', file(`routes:\n  - path: /s\n    upstream:\n      stdio: { command: sluice-no-such-program }\n`));
    assert.equal(missing.status, 0);
    assert.match(missing.stderr, /warning: route \/s: sluice-no-such-program: not found on PATH/);
    const bad = run('validate', file(`routes:\n  - path: /s\n    upstream:\n      stdio: { command: node, shell: true }\n`));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /upstream\.stdio/);
  });

  it('validate reports a missing file', () => {
    const r = run('validate', '/nonexistent/sluice.yaml');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read file/);
  });

  it('rejects unknown commands and options with usage', () => {
    assert.equal(run('frobnicate').status, 2);
    assert.equal(run('serve', '--nope').status, 2);
    assert.equal(run('serve').status, 2);
  });

  it('quick form: serve --listen --upstream [--path] carries an SDK client', async () => {
    const upstream = await startDemoUpstream();
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--upstream', upstream.url, '--path', '/public/mcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/public\/mcp)/.exec(err);
          if (m?.[1]) resolve(m[1]);
        });
        child.once('exit', () => reject(new Error(err)));
      });
      const client = new Client({ name: 'cli', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url)));
      const r = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'hi' }]);
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await upstream.close();
    }
  });

  it('quick form: the HTTP+SSE URL is printed (server base as upstream: <path>/sse) and carries an SSE client; an upstream ending in /sse is warned about', async () => {
    const upstream = await startDemoUpstream();
    const base = upstream.url.replace(/\/mcp$/, '');
    const serve = (target: string) => spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--upstream', target, '--path', '/mcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const until = (child: ReturnType<typeof serve>, re: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = re.exec(err);
          if (m) resolve(m);
        });
        child.once('exit', () => reject(new Error(err)));
      });
    const good = serve(base);
    const bad = serve(`${base}/sse`);
    try {
      const m = await until(good, /HTTP\+SSE clients connect to (http:\/\/127\.0\.0\.1:\d+\/mcp\/sse)/);
      const client = new Client({ name: 'cli-sse', version: '1' });
      await client.connect(new SSEClientTransport(new URL(m[1]!)));
      const r = await client.callTool({ name: 'echo', arguments: { message: 'over sse' } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'over sse' }]);
      await client.close();
      const w = await until(bad, /warning: the upstream ends in \/sse.*give the server's base URL \((\S+)\)/);
      assert.equal(w[1], `${base}/`);
    } finally {
      for (const c of [good, bad]) {
        c.kill('SIGTERM');
        await new Promise((r) => c.once('exit', r));
      }
      await upstream.close();
    }
  });

  it('quick form: serve --stdio -- COMMAND ARGS runs a stdio server per session and carries an SDK client', async () => {
    const fixture = new URL('../fixtures/stdio-server.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--stdio', '--', process.execPath, fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp) -> stdio: /.exec(err);
          if (m?.[1] && err.includes('HTTP+SSE clients connect to')) resolve(m[1]);
        });
        child.once('exit', () => reject(new Error(err)));
      });
      const client = new Client({ name: 'cli-stdio', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(url));
      await client.connect(transport);
      const r = await client.callTool({ name: 'pid', arguments: {} });
      assert.match((r.content as { text: string }[])[0]!.text, /^\d+$/);
      await transport.terminateSession();
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.equal(run('serve', '--stdio').status, 2, '--stdio without a command is a usage error');
  });

  it('quick form with repeated --upstream spreads new sessions over the replicas', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream()]);
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--upstream', ups[0]!.url, '--upstream', ups[1]!.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let err = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp) -> (\S+), (\S+)/.exec(err);
          if (m?.[1]) resolve(m[1]);
        });
        child.once('exit', () => reject(new Error(err)));
      });
      assert.match(err, new RegExp(`-> ${ups[0]!.url}, ${ups[1]!.url}`));
      const clients = [];
      for (let i = 0; i < 4; i++) {
        const c = new Client({ name: `q${i}`, version: '1' });
        await c.connect(new StreamableHTTPClientTransport(new URL(url)));
        assert.deepEqual((await c.callTool({ name: 'add', arguments: { a: i, b: 1 } })).content, [{ type: 'text', text: String(i + 1) }]);
        clients.push(c);
      }
      assert.deepEqual(ups.map((u) => u.sessions.size), [2, 2]);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('SIGHUP re-reads the config: a replica marked draining gets no new sessions; a bad file keeps the running config', async () => {
    const ups = await Promise.all([startDemoUpstream(), startDemoUpstream()]);
    const config = (draining: boolean) => ({ routes: [{ path: '/mcp', upstream: [{ url: ups[0]!.url, id: 'a', draining }, { url: ups[1]!.url, id: 'b' }] }] });
    const sluice = await startSluice(config(false), newKeyText());
    try {
      const connect = async () => {
        const c = new Client({ name: 'hup', version: '1' });
        await c.connect(new StreamableHTTPClientTransport(new URL(`${sluice.base}/mcp`)));
        return c;
      };
      const early = await connect();
      assert.equal(ups[0]!.sessions.size, 1);
      writeFileSync(sluice.file, JSON.stringify({ listen: [{ host: '127.0.0.1', port: sluice.port }], ...config(true) }));
      sluice.child.kill('SIGHUP');
      await waitFor(() => sluice.output().includes('replica draining'), 5000, 'reload');
      const later = [await connect(), await connect(), await connect()];
      assert.deepEqual(ups.map((u) => u.sessions.size), [1, 3], 'no new session on the draining replica');
      assert.deepEqual((await early.callTool({ name: 'echo', arguments: { message: 'still here' } })).content, [{ type: 'text', text: 'still here' }]);
      writeFileSync(sluice.file, 'routes: [');
      sluice.child.kill('SIGHUP');
      await waitFor(() => sluice.output().includes('config reload failed'), 5000, 'failed reload logged');
      assert.deepEqual((await later[0]!.callTool({ name: 'echo', arguments: { message: 'ok' } })).content, [{ type: 'text', text: 'ok' }]);
      await Promise.all([early, ...later].map((c) => c.close()));
    } finally {
      await sluice.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  it('check-upstream prints allowed or refused: <rule>, exit 0 or 1, with --resolve instead of DNS and --trusted', () => {
    const cases: [string[], number, RegExp][] = [
      [['http://127.0.0.1:3000/mcp'], 1, /^refused: loopback /],
      [['http://127.0.0.1:3000/mcp', '--trusted'], 0, /^allowed$/],
      [['http://0x7f.1/'], 1, /^refused: loopback /],
      [['http://[::ffff:169.254.169.254]/', '--trusted'], 1, /^refused: metadata /],
      [['https://mcp.example.test/', '--resolve', 'mcp.example.test=93.184.215.14'], 0, /^allowed$/],
      [['https://mcp.example.test/', '--resolve', 'mcp.example.test=93.184.215.14,10.0.0.3'], 1, /^refused: private /],
      [['https://mcp.example.test/', '--resolve', 'other.test=93.184.215.14', '--resolve', 'mcp.example.test=::1'], 1, /^refused: loopback /],
      [['https://mcp.example.test/', '--resolve', 'other.test=93.184.215.14'], 1, /^refused: unresolvable /],
      [['http://user@mcp.example.test/'], 1, /^refused: userinfo /],
      [['http://mcp/', '--resolve', 'mcp=93.184.215.14'], 1, /^refused: single-label-name /],
    ];
    for (const [args, code, out] of cases) {
      const r = run('check-upstream', ...args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout.trim(), out, args.join(' '));
    }
    assert.equal(run('check-upstream').status, 2);
    assert.equal(run('check-upstream', 'http://a.test/', '--resolve', 'nonsense').status, 2);
  });
});
