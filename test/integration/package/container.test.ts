// The container image as a user builds and runs it: `podman build -f Containerfile .` and `podman
// run` with a mounted config, read-only root file system, as the image's non-root user. On machines
// that reach no image registry, scripts/container/base-image.sh first builds a stand-in for the
// official Node base and tags it with the Containerfile's FROM name. Rootful podman (CI runs as root).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startProbe, type Probe } from '../../../src/probe/probe-server.ts';
import { freePort, runProgram } from '../../helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'scripts', 'container', 'containers.conf') };
const TAG = `localhost/sluice:test-${process.pid}`;
const NAME = `sluice-test-${process.pid}`;

async function sh(program: string, args: string[], timeout = 600_000): Promise<{ code: number; out: string; err: string }> {
  const r = await runProgram(program, args, { cwd: ROOT, env, timeout });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

async function podman(...args: string[]): Promise<string> {
  const r = await sh('podman', args);
  assert.equal(r.code, 0, `podman ${args.join(' ')}: ${r.err}`);
  return r.out;
}

describe('the container image (Containerfile, podman)', () => {
  let probe: Probe;
  let dir = '';
  let port = 0;
  let adminPort = 0;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the container test runs rootful podman: run it as root (CI does)');
    const base = await sh('bash', ['scripts/container/base-image.sh']);
    assert.equal(base.code, 0, base.err);
    await podman('build', '--isolation', 'chroot', '--network', 'host', '--format', 'docker', '--quiet', '-t', TAG, '-f', 'Containerfile', '.');
    probe = await startProbe({ port: 0, instance: 'behind-container' });
    [port, adminPort] = [await freePort(), await freePort()];
    dir = mkdtempSync(join(tmpdir(), 'sluice-ctr-'));
    chmodSync(dir, 0o755);
    const config = join(dir, 'sluice.yaml');
    writeFileSync(config, [`listen: [{host: 127.0.0.1, port: ${port}}]`, `routes: [{path: /mcp, upstream: "${probe.url}"}]`, `admin: {listen: {host: 127.0.0.1, port: ${adminPort}}}`, 'shutdown: {drain: 5s}', ''].join('\n'));
    chmodSync(config, 0o644);
    await podman('run', '-d', '--name', NAME, '--read-only', '--network', 'host', '-v', `${config}:/etc/sluice/sluice.yaml:ro`, '-e', `SLUICE_HEALTHZ_URL=http://127.0.0.1:${adminPort}/healthz`, TAG);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${adminPort}/healthz`).then((r) => r.status, () => 0);
      if (up === 200) break;
      if (Date.now() > deadline) assert.fail(`the container never answered /healthz: ${(await sh('podman', ['logs', NAME])).err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  after(async () => {
    await sh('podman', ['rm', '-f', NAME]);
    await sh('podman', ['rmi', '-f', TAG]);
    await probe?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('declares a non-root user, SIGTERM, the entrypoint and a health check on /healthz (never /mcp)', async () => {
    // podman lists the health check beside Config, docker inside it.
    const [cfg] = JSON.parse(await podman('image', 'inspect', TAG)) as { Healthcheck?: { Test: string[] }; Config: { User: string; StopSignal: string; Entrypoint: string[]; Cmd: string[]; Healthcheck?: { Test: string[] } } }[];
    assert.equal(cfg!.Config.User, '1000:1000');
    assert.equal(cfg!.Config.StopSignal, 'SIGTERM');
    assert.deepEqual(cfg!.Config.Entrypoint, ['sluice']);
    assert.deepEqual(cfg!.Config.Cmd, ['serve', '--config', '/etc/sluice/sluice.yaml']);
    const test = (cfg!.Healthcheck ?? cfg!.Config.Healthcheck)?.Test.join(' ') ?? '';
    assert.match(test, /healthz|HEALTHZ/);
    assert.match(test, /SLUICE_HEALTHZ_URL/);
    assert.doesNotMatch(test, /\/mcp/);
    assert.match(await podman('image', 'inspect', TAG, '--format', '{{range .Config.Env}}{{println .}}{{end}}'), /SLUICE_HEALTHZ_URL=http:\/\/127\.0\.0\.1:9090\/healthz/);
  });

  it('runs as uid 1000 on a read-only root file system and passes its health check', async () => {
    assert.equal((await podman('exec', NAME, 'id', '-u')).trim(), '1000');
    const ps = await podman('exec', NAME, 'cat', '/proc/1/status');
    assert.match(ps, /^Uid:\s+1000\s/m);
    const write = await sh('podman', ['exec', NAME, 'touch', '/opt/sluice/x']);
    assert.notEqual(write.code, 0, 'the root file system must be read-only');
    const hc = await sh('podman', ['healthcheck', 'run', NAME]);
    assert.equal(hc.code, 0, hc.out + hc.err);
    assert.match(await podman('inspect', NAME, '--format', '{{.State.Health.Status}}'), /healthy/);
  });

  it('carries an MCP session from the official SDK client to the upstream', async () => {
    const client = new Client({ name: 'container-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    const info = await client.callTool({ name: 'probe_info', arguments: {} });
    assert.match(JSON.stringify(info.content), /behind-container/);
    await client.close();
    assert.ok(probe.records.some((r) => r.method === 'POST'), 'the upstream saw the calls');
  });

  it('`podman run IMAGE --version` runs the sluice command', async () => {
    const r = await sh('podman', ['run', '--rm', '--read-only', '--network', 'none', TAG, '--version']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out.trim(), /^\d+\.\d+\.\d+/);
  });

  it('stops on SIGTERM by draining, exit code 0', async () => {
    await podman('stop', '-t', '45', NAME);
    assert.equal((await podman('inspect', NAME, '--format', '{{.State.ExitCode}}')).trim(), '0');
    const logs = await sh('podman', ['logs', NAME]);
    assert.match(logs.out + logs.err, /"signal":"SIGTERM","msg":"shutting down"/);
  });
});
