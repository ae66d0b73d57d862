// The npm package as a user gets it: `npm pack` here, then `npm i ./sluice-x.y.z.tgz` in an empty
// directory outside the checkout, on Node 24 and on the oldest supported Node (22, pinned in
// test/node22), with no TypeScript and nothing of the checkout on PATH. Every command runs from
// the installed copy; one real MCP session goes through its gateway.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { runProgram, spawnUntil, type SluiceProcess } from '../../helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const NODE24 = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const NODE22 = join(ROOT, 'test', 'node22', 'node_modules', 'node', 'bin', 'node');

/** The environment of a user's shell: this Node first on PATH, nothing of the checkout or of `npm test`. */
function userEnv(nodeBinDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_.*|init_cwd|node|node_options|node_path)$/i.test(k)) env[k] = v;
  const rest = (process.env['PATH'] ?? '').split(':').filter((d) => d && !d.startsWith(ROOT) && !d.includes('node_modules'));
  env['PATH'] = [nodeBinDir, ...rest].join(':');
  return { ...env, ...extra };
}

const run = (program: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeout?: number }) => runProgram(program, args, opts);

let work = '';
let tarball = '';
let packed: string[] = [];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sluice-pkg-'));
  // Packed with the checkout's own npm scripts (prepack builds dist/ with the pinned Node 24).
  const r = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env: { ...userEnv(dirname(NODE24)), PATH: `${join(ROOT, 'node_modules', '.bin')}:${userEnv(dirname(NODE24))['PATH']}` }, timeout: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0]!.filename);
  packed = info[0]!.files.map((f) => f.path);
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('holds the built program, its declarations, docs and examples, and no tests, fixtures, benchmarks or CI', () => {
    for (const need of ['package.json', 'README.md', 'LICENSE', 'bin/sluice.js', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'docs/config.md', 'docs/architecture.md', 'examples/sluice.yaml', 'examples/systemd/sluice.service']) {
      assert.ok(packed.includes(need), `${need} is missing from the tarball`);
    }
    const stray = packed.filter((p) => /^(test|bench|\.ci|scripts|src|node_modules)\//.test(p) || p === 'Containerfile' || p.endsWith('.ts') && !p.endsWith('.d.ts') || /\.(tgz|log)$/.test(p) || p.includes('results/'));
    assert.deepEqual(stray, []);
  });
});

for (const [label, node] of [['Node 24', NODE24], ['Node 22', NODE22]] as const) {
  describe(`the package installed into an empty project, on ${label}`, () => {
    let dir = '';
    let env: NodeJS.ProcessEnv = {};
    let sluice = '';
    const running: SluiceProcess[] = [];

    before(async () => {
      assert.ok(existsSync(node), `${node} is missing: run scripts/setup.sh`);
      dir = mkdtempSync(join(work, 'project-'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
      env = userEnv(dirname(node));
      const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, env, timeout: 300_000 });
      assert.equal(install.code, 0, install.stderr);
      assert.doesNotMatch(install.stderr, /EBADENGINE|Unsupported engine/i);
      sluice = join(dir, 'node_modules', '.bin', 'sluice');
    });

    after(async () => {
      for (const p of running) await p.stop();
    });

    it('runs the installed copy on this Node, compiled JavaScript only', async () => {
      const v = await run(sluice, ['--version'], { cwd: dir, env });
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout.trim(), PKG.version);
      const which = await run('node', ['-p', 'process.version'], { cwd: dir, env });
      assert.match(which.stdout, label === 'Node 24' ? /^v24\./ : /^v22\./);
      const installed = join(dir, 'node_modules', PKG.name);
      assert.ok(!existsSync(join(installed, 'src')), 'the package must not carry the TypeScript sources');
      assert.ok(!existsSync(join(dir, 'node_modules', 'typescript')), 'TypeScript must not be a run-time dependency');
    });

    it('validate, sessions, auth and config run', async () => {
      const example = join(dir, 'node_modules', PKG.name, 'examples', 'sluice.yaml');
      const ok = await run(sluice, ['validate', example], { cwd: dir, env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout + ok.stderr, /ok \(1 listener/);
      writeFileSync(join(dir, 'bad.yaml'), 'routes: []\nlisten: nope\n');
      const bad = await run(sluice, ['validate', join(dir, 'bad.yaml')], { cwd: dir, env });
      assert.equal(bad.code, 1);
      assert.match(bad.stdout + bad.stderr, /routes/);
      const key = await run(sluice, ['sessions', 'new-key'], { cwd: dir, env });
      assert.match(key.stdout.trim(), /^[A-Za-z0-9_-]{43}$/);
      const apiKey = await run(sluice, ['auth', 'new-key'], { cwd: dir, env });
      assert.equal(apiKey.code, 0, apiKey.stderr);
      const hashed = await run(sluice, ['auth', 'hash-key', 'k'.repeat(32)], { cwd: dir, env });
      assert.match(hashed.stdout, /[0-9a-f]{64}/);
      const nginx = await run(sluice, ['config', 'nginx', '--upstream', 'http://127.0.0.1:3000/mcp'], { cwd: dir, env });
      assert.equal(nginx.code, 0, nginx.stderr);
      assert.match(nginx.stdout, /proxy_buffering off/);
    });

    it('probe, check-upstream, serve (one MCP session through it), sessions decode, doctor --quick, demo', async () => {
      const probe = await spawnUntil(sluice, ['probe', '--listen', '127.0.0.1:0', '--instance', 'pkg'], /MCP at (\S+)/, env);
      running.push(probe);
      const upstream = /MCP at (\S+)/.exec(probe.stderr())![1]!;

      const trusted = await run(sluice, ['check-upstream', upstream, '--trusted'], { cwd: dir, env });
      assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
      assert.match(trusted.stdout, /allowed/);
      const strict = await run(sluice, ['check-upstream', upstream], { cwd: dir, env });
      assert.equal(strict.code, 1);
      assert.match(strict.stdout, /refused/);

      const keys = (await run(sluice, ['sessions', 'new-key'], { cwd: dir, env })).stdout.trim();
      const gw = await spawnUntil(sluice, ['serve', '--upstream', upstream, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], /admin at \S+/, { ...env, SLUICE_SESSION_KEYS: keys });
      running.push(gw);
      const mcp = /(http:\/\/127\.0\.0\.1:\d+\/mcp) ->/.exec(gw.stderr())![1]!;
      const admin = /admin at (\S+)/.exec(gw.stderr())![1]!;
      assert.equal((await fetch(`${admin}/healthz`)).status, 200);
      // The admin page's files ship in the package (a loopback admin address with no token: open).
      for (const [path, type] of [['/ui', /text\/html/], ['/ui/ui.js', /javascript/], ['/ui/ui.css', /text\/css/]] as const) {
        const page = await fetch(`${admin}${path}`);
        assert.equal(page.status, 200, path);
        assert.match(page.headers.get('content-type') ?? '', type);
        assert.ok((await page.text()).length > 200, path);
      }

      const client = new Client({ name: 'pkg-test', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(mcp));
      await client.connect(transport);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'probe_info'));
      const info = await client.callTool({ name: 'probe_info', arguments: {} });
      assert.match(JSON.stringify(info.content), /\\"instance\\":\\"pkg\\"/);
      const token = transport.sessionId;
      assert.ok(token);
      const decoded = await run(sluice, ['sessions', 'decode', token, `--keys=${keys}`], { cwd: dir, env });
      assert.equal(decoded.code, 0, decoded.stderr);
      assert.match(decoded.stdout, new RegExp(upstream.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      await client.close();

      const doctor = await run(sluice, ['doctor', mcp, '--quick', '--idle', '2', '--json'], { cwd: dir, env, timeout: 60_000 });
      assert.equal(doctor.code, 0, doctor.stdout.slice(0, 2000) + doctor.stderr);
      const report = JSON.parse(doctor.stdout) as { checks: { id: string; status: string }[] };
      assert.deepEqual(report.checks.filter((r) => r.status === 'fail'), []);
      assert.ok(report.checks.filter((r) => r.status === 'pass').length >= 15);

      assert.equal(await gw.stop(), 0, 'SIGTERM drains and exits 0');
      const demo = await spawnUntil(sluice, ['demo', '--listen', '127.0.0.1:0'], /Streamable HTTP[^\n]*(http:\/\/\S+)/, env);
      running.push(demo);
      const demoUrl = /Streamable HTTP[^\n]*?(http:\/\/\S+)/.exec(demo.stderr())![1]!;
      const demoClient = new Client({ name: 'pkg-demo', version: '1' });
      await demoClient.connect(new StreamableHTTPClientTransport(new URL(demoUrl)));
      const demoTools = await demoClient.listTools();
      assert.ok(demoTools.tools.some((t) => t.name === 'slow_count'));
      await demoClient.close();
    });
  });
}

describe('the package installed globally (npm i -g), on Node 24', () => {
  it('puts `sluice` on PATH and it runs from there', async () => {
    const prefix = mkdtempSync(join(work, 'global-'));
    const env = userEnv(dirname(NODE24), { npm_config_prefix: prefix });
    const install = await run('npm', ['install', '-g', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: work, env, timeout: 300_000 });
    assert.equal(install.code, 0, install.stderr);
    const onPath = { ...env, PATH: `${join(prefix, 'bin')}:${env['PATH']}` };
    const v = await run('sluice', ['--version'], { cwd: tmpdir(), env: onPath });
    assert.equal(v.stdout.trim(), PKG.version);
    const help = await run('sluice', ['--help'], { cwd: tmpdir(), env: onPath });
    assert.match(help.stdout + help.stderr, /sluice serve --config sluice\.yaml/);
  });
});

describe('the library entry', () => {
  it('exports the gateway, config loading and the doctor with declarations a TypeScript user compiles against', async () => {
    const dir = mkdtempSync(join(work, 'lib-'));
    const env = userEnv(dirname(NODE24));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'lib-user', private: true, type: 'module' }));
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, env, timeout: 300_000 });
    assert.equal(install.code, 0, install.stderr);
    writeFileSync(
      join(dir, 'use.ts'),
      [
        "import { startGateway, quickConfig, createLogger, startProbe, type Config, type Gateway } from 'sluice';",
        'const probe = await startProbe({ port: 0 });',
        "const config: Config = quickConfig({ upstream: probe.url, listen: '127.0.0.1:0' });",
        "const gw: Gateway = await startGateway(config, createLogger('silent'));",
        "const res = await fetch(`http://127.0.0.1:${gw.addresses[0]!.port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });",
        "console.log(res.status, res.headers.get('mcp-session-id') ? 'session' : 'none');",
        'await gw.shutdown();',
        'await probe.close();',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const types = join(ROOT, 'node_modules', '@types');
    const check = await run(NODE24, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2024', '--skipLibCheck', '--typeRoots', types, '--types', 'node', join(dir, 'use.ts')], { cwd: dir, env });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const r = await run(NODE24, [join(dir, 'use.ts')], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '200 session');
  });
});
