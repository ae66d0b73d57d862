// Broker sessions served by any Sluice instance (issue 33): three `sluice serve --workers 2`
// processes on distinct loopback addresses (127.0.0.2-4, as pods have distinct IPs), sharing only
// their session keys, behind a real HAProxy with `balance roundrobin` and no affinity. A stdio
// session, a 2026-07-28 call's rounds and a federated session live on one instance; every request
// for them that lands on another is handed to the owner over its peer listener.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { KeyRing, newKeyText } from '../../src/session/key-ring.ts';
import { open } from '../../src/session/token.ts';
import { alive, childrenOf } from '../fixtures/process-table.ts';
import { freePort, JSON_HEADERS, rpc, sleep, spawnSluice, waitFor, type SluiceProcess } from '../helpers.ts';

const HOSTILE = new URL('../fixtures/hostile-stdio-server.ts', import.meta.url).pathname;
const text = (r: unknown): string => ((r as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
const lines = (p: SluiceProcess): Record<string, unknown>[] =>
  p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

/** A process and all it started, as the process table shows them now. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of childrenOf(p)) {
      out.push(c.pid);
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

interface Instance {
  host: string;
  port: number;
  peerPort: number;
  proc: SluiceProcess;
}

async function legacy(url: string): Promise<{ c: Client; t: StreamableHTTPClientTransport }> {
  const c = new Client({ name: 'cluster', version: '1' }, { capabilities: { elicitation: {} } });
  c.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'ada' } }));
  const t = new StreamableHTTPClientTransport(new URL(url));
  await c.connect(t, { prior: { kind: 'legacy' } } as never);
  return { c, t };
}

async function modern(url: string): Promise<Client> {
  const c = new Client({ name: 'cluster-modern', version: '1' }, { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  c.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'grace' } }));
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}

describe('a cluster of three Sluice instances behind a round-robin balancer (issue 33)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const keys = `${newKeyText()},${newKeyText()}`;
  const instances: Instance[] = [];
  let haproxy: ChildProcess;
  let front: string;

  // Each instance runs the config of the rendered Kubernetes manifests (deploy/kubernetes/base),
  // with this machine's addresses in place of the pod's and the test's routes, and the env the
  // Deployment gives it (POD_IP, SLUICE_SESSION_KEYS, SLUICE_ADMIN_TOKEN).
  const rendered = spawnSync('kubectl', ['kustomize', 'deploy/kubernetes/base'], { encoding: 'utf8' });
  const configMap = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Record<string, any>).find((d) => d['kind'] === 'ConfigMap'); // eslint-disable-line @typescript-eslint/no-explicit-any
  const start = async (host: string): Promise<Instance> => {
    const port = await freePort();
    const peerPort = await freePort();
    const adminPort = await freePort();
    const config = parse(configMap?.['data']['sluice.yaml'] as string) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(config['cluster']['advertise'], '${POD_IP}:7070');
    config['listen'] = [{ host, port, allowHosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'] }];
    config['admin'] = { listen: { host, port: adminPort } };
    config['cluster'] = { listen: { host, port: peerPort }, advertise: `\${POD_IP}:${peerPort}` };
    config['shutdown'] = { drain: '2s' };
    config['routes'] = [
      { path: '/stdio', upstream: { stdio: { command: process.execPath, args: [HOSTILE] } } },
      { path: '/fed', servers: { local: { upstream: { stdio: { command: process.execPath, args: [HOSTILE] } } } } },
    ];
    const cfg = join(dir, `${host}.yaml`);
    writeFileSync(cfg, stringify(config));
    const env = { ...process.env, POD_IP: host, SLUICE_SESSION_KEYS: keys, SLUICE_ADMIN_TOKEN: 'cluster-admin-token-0123456789' };
    const proc = await spawnSluice(['serve', '--config', cfg], `${host}:${port}`, env);
    return { host, port, peerPort, proc };
  };

  before(async () => {
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) instances.push(await start(host));
    const port = await freePort();
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      [
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 60s',
        '  timeout server 60s',
        'frontend mcp',
        `  bind 127.0.0.1:${port}`,
        '  default_backend sluice',
        'backend sluice',
        '  balance roundrobin',
        // As a Service drops a pod that is gone: checked, and a refused connection retried elsewhere.
        '  option redispatch',
        '  retries 2',
        '  default-server check inter 300ms fall 1 rise 2',
        ...instances.map((i, n) => `  server s${n} ${i.host}:${i.port}`),
      ].join('\n') + '\n',
    );
    haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    front = `http://127.0.0.1:${port}`;
    await waitFor(() => true, 10);
    for (let i = 0; i < 50; i++) {
      const ok = await fetch(`${front}/stdio`, { method: 'OPTIONS' }).then(() => true, () => false);
      if (ok) break;
      await sleep(100);
    }
  });
  after(async () => {
    haproxy?.kill('SIGKILL');
    await Promise.all(instances.map((i) => i.proc.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a stdio session (2025) keeps its one child whichever instance each request reaches: calls, progress, elicitation, DELETE', async () => {
    const { c, t } = await legacy(`${front}/stdio`);
    const pids = new Set<string>();
    for (let i = 0; i < 9; i++) pids.add(text(await c.callTool({ name: 'pid', arguments: {} })));
    assert.equal(pids.size, 1, `one child served every call: ${[...pids].join(', ')}`);
    assert.equal(text(await c.callTool({ name: 'remember', arguments: { value: 'kept' } })), 'stored');
    assert.equal(text(await c.callTool({ name: 'recall', arguments: {} })), 'kept');
    let progress = 0;
    await c.callTool({ name: 'flood', arguments: { count: 5, size: 10 } }, { onprogress: () => void progress++ });
    assert.equal(progress, 5);
    assert.equal(text(await c.callTool({ name: 'ask', arguments: {} })), 'answered {"name":"ada"}');
    const handed = instances.flatMap((i) => lines(i.proc)).filter((l) => String(l['upstream']).startsWith('instance '));
    assert.ok(handed.length > 0, 'requests were handed to the instance holding the session');
    await t.terminateSession();
    await c.close();
  });

  it("a 2026-07-28 client's input_required rounds and a federated session work across instances", async () => {
    const m = await modern(`${front}/stdio`);
    for (let i = 0; i < 3; i++) assert.equal(text(await m.callTool({ name: 'ask', arguments: {} })), 'answered {"name":"grace"}');
    await m.close();
    const { c } = await legacy(`${front}/fed`);
    const names = (await c.listTools()).tools.map((x) => x.name);
    assert.ok(names.includes('local__pid'), names.join(' '));
    const pids = new Set<string>();
    for (let i = 0; i < 6; i++) pids.add(text(await c.callTool({ name: 'local__pid', arguments: {} })));
    assert.equal(pids.size, 1);
    await c.close();
  });

  it('the peer listener serves only requests signed with the cluster keys', async () => {
    const i = instances[0] as Instance;
    const r = await fetch(`http://${i.host}:${i.peerPort}/stdio`, { method: 'POST', headers: JSON_HEADERS, body: rpc('initialize', {}) });
    assert.equal(r.status, 401);
    const forged = await fetch(`http://${i.host}:${i.peerPort}/stdio`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-sluice-peer': `${Math.floor(Date.now() / 1000)}.AAAA` }, body: rpc('initialize', {}) });
    assert.equal(forged.status, 401);
  });

  it('an instance stopped (SIGTERM) lets its sessions finish their calls within the drain', async () => {
    const ring = KeyRing.parse(keys);
    // A session of an instance other than the one the next test kills.
    let owned = await legacy(`${front}/stdio`);
    const ownerOf = (s: typeof owned): string => open(ring, 'session', s.t.sessionId as string)?.replica ?? '';
    for (let i = 0; i < 6 && ownerOf(owned).includes('@127.0.0.3:'); i++) {
      await owned.c.close();
      owned = await legacy(`${front}/stdio`);
    }
    const owner = ownerOf(owned);
    const victim = instances.find((i) => owner.endsWith(`@${i.host}:${i.peerPort}`)) as Instance;
    assert.ok(victim, owner);
    const call = owned.c.callTool({ name: 'slow', arguments: { ms: 1200 } });
    await sleep(300);
    victim.proc.child.kill('SIGTERM');
    await sleep(200);
    // While it drains, another instance still hands it this session's requests.
    const other = instances.find((i) => i !== victim) as Instance;
    const during = await fetch(`http://${other.host}:${other.port}/stdio`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'mcp-session-id': owned.t.sessionId as string, 'mcp-protocol-version': '2025-11-25' },
      body: rpc('tools/call', { name: 'recall', arguments: {} }, 77),
    });
    assert.equal(during.status, 200, await during.text());
    assert.equal(text(await call), 'slept 1200');
    await waitFor(() => victim.proc.child.exitCode !== null, 15_000, 'the stopped instance exited');
    assert.equal(victim.proc.child.exitCode, 0);
    await owned.c.close().catch(() => undefined);
    instances.splice(instances.indexOf(victim), 1);
    // The balancer's checks take it out (as a Service drops a pod that is gone).
    await sleep(800);
  });

  it('an instance killed outright loses only its own sessions (404, and a new session works); the others go on; no child is left', async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => legacy(`${front}/stdio`)));
    for (const s of sessions) assert.match(text(await s.c.callTool({ name: 'pid', arguments: {} })), /^\d+$/);
    const victim = instances.find((i) => i.host === '127.0.0.3') as Instance;
    const family = descendants(victim.proc.child.pid as number);
    assert.ok(family.length > 2, 'workers and their stdio children');
    victim.proc.child.kill('SIGKILL');
    // Its workers notice and stop (their children with them); the balancer stops sending it work.
    await waitFor(() => family.every((pid) => !alive(pid)), 15_000, 'the killed instance left no process');
    await sleep(700);
    // Each session's next request, by hand (an SDK client would start again by itself on the 404).
    const status: number[] = [];
    for (const s of sessions) {
      const r = await fetch(`${front}/stdio`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'mcp-session-id': s.t.sessionId as string, 'mcp-protocol-version': '2025-11-25' },
        body: rpc('tools/call', { name: 'pid', arguments: {} }, 50),
      });
      await r.text();
      status.push(r.status);
    }
    const lost = status.filter((x) => x === 404).length;
    assert.ok(lost > 0 && lost < sessions.length && status.every((x) => x === 200 || x === 404), status.join(' '));
    const fresh = await legacy(`${front}/stdio`);
    assert.match(text(await fresh.c.callTool({ name: 'pid', arguments: {} })), /^\d+$/);
    await fresh.c.close();
    for (const s of sessions) await s.c.close().catch(() => undefined);
  });
});
