// `node scripts/interop-matrix.ts [--out FILE] [--json FILE] [--only ROUTE] [--conformance]`: the interop matrix of issue 32. Every route kind
// (relay, stdio, bridge, federated, and stdio and bridge routes under `--workers 2`) × real peers
// (the SDK conformance surface over HTTP in each era and over stdio, server-everything,
// server-filesystem) × clients (SDK v1; SDK v2 in 2025 and in 2026-07-28) × operations (tools,
// a call, progress, logging, sampling, elicitation, a resource, a prompt, roots). Each cell runs
// the operation through Sluice and directly against the same server code (its dual-era HTTP
// form, or the same program over stdio) and compares what the client sees. Prints cells
// identical / total per route kind and every cell that differs. The suite runs the cells that
// cover each code path (test/integration/era-exactness.test.ts and others); this runs them all.
// --conformance also runs the official conformance suite through the --workers 2 routes (the suite
// runs it through one process in test/integration/conformance.test.ts) and compares check by check.
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startUpstreamKit } from '../src/demo/upstream-kit.ts';
import { registerConformanceV1, registerConformanceV2 } from '../test/fixtures/conformance-surface.ts';
import { EVERYTHING_ENTRY as EVERYTHING, startEverything } from '../test/fixtures/server-everything.ts';
import { freePort, startTestGateway } from '../test/helpers.ts';
import { passCount, regressions, runConformance } from '../test/conformance-harness.ts';

const { values } = parseArgs({
  options: { out: { type: 'string' }, json: { type: 'string' }, only: { type: 'string' }, conformance: { type: 'boolean' } },
});
const require = createRequire(import.meta.url);
const FS = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const SURFACE_STDIO = new URL('../test/fixtures/conformance-stdio.ts', import.meta.url).pathname;
const SLUICE = new URL('../bin/sluice.js', import.meta.url).pathname;
const LEVEL = 'io.modelcontextprotocol/logLevel';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type ClientKind = 'v1' | 'v2-2025' | 'v2-2026';
interface Session {
  call(name: string, args: Record<string, unknown>, opts?: { progress?: () => void; meta?: Record<string, unknown> }): Promise<unknown>;
  tools(): Promise<string[]>;
  read(uri: string): Promise<unknown>;
  prompt(name: string): Promise<unknown>;
  logs: string[];
  close(): Promise<void>;
}

const ROOT = realpathSync(mkdtempSync(join(tmpdir(), 'interop-root-')));
const FS_HOME = realpathSync(mkdtempSync(join(tmpdir(), 'interop-fs-')));
const sampled = { model: 'matrix-model', role: 'assistant', content: { type: 'text', text: 'sampled answer' } };
const elicited = { action: 'accept', content: { name: 'ada', email: 'ada@example.test', username: 'ada' } };

async function open(kind: ClientKind, url: string): Promise<Session> {
  const logs: string[] = [];
  if (kind === 'v1') {
    const c = new ClientV1({ name: 'matrix', version: '1' }, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
    c.setRequestHandler(CreateMessageRequestSchema, async () => sampled as never);
    c.setRequestHandler(ElicitRequestSchema, async () => elicited as never);
    c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file://${ROOT}`, name: 'root' }] }));
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
    await c.connect(new TransportV1(new URL(url)));
    return {
      logs,
      call: (name, args, o) => c.callTool({ name, arguments: args, ...(o?.meta ? { _meta: o.meta } : {}) }, undefined, { onprogress: o?.progress, timeout: 15_000 }),
      tools: async () => (await c.listTools()).tools.map((t) => t.name),
      read: (uri) => c.readResource({ uri }),
      prompt: (name) => c.getPrompt({ name }),
      close: () => c.close(),
    };
  }
  const c = new Client(
    { name: 'matrix', version: '1' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } }, ...(kind === 'v2-2026' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}) },
  );
  c.setRequestHandler('sampling/createMessage', async () => sampled as never);
  c.setRequestHandler('elicitation/create', async () => elicited as never);
  c.setRequestHandler('roots/list', async () => ({ roots: [{ uri: `file://${ROOT}`, name: 'root' }] }));
  c.setNotificationHandler('notifications/message', (n) => void logs.push(String(n.params.data)));
  await c.connect(new StreamableHTTPClientTransport(new URL(url)), ...((kind === 'v2-2025' ? [{ prior: { kind: 'legacy' } }] : []) as never[]));
  return {
    logs,
    call: (name, args, o) => c.callTool({ name, arguments: args, ...(o?.meta ? { _meta: o.meta } : {}) }, { onprogress: o?.progress, timeout: 15_000 }),
    tools: async () => (await c.listTools()).tools.map((t) => t.name),
    read: (uri) => c.readResource({ uri }),
    prompt: (name) => c.getPrompt({ name }),
    close: () => c.close(),
  };
}

const text = (r: unknown): string => {
  const o = r as { content?: { text?: string }[]; contents?: { text?: string }[]; messages?: { content?: { text?: string } }[] };
  return [...(o.content ?? []), ...(o.contents ?? [])].map((c) => c.text ?? '').join('') + (o.messages ?? []).map((m) => m.content?.text ?? '').join('');
};

/** One operation: what the client sees, as a string to compare. */
type Op = (s: Session, kind: ClientKind) => Promise<string>;
// The surface's two SDK lines differ where each era must: the 2025 one has the 2026-07-28 suite's
// round tool written as a push elicitation (test_input_required_result_*), and the 2026-07-28 one
// keeps only the accepted content its schema asked for. Those differences of the fixture are left
// out of what is compared; everything else must match.
const surfaceOps: Record<string, Op> = {
  tools: async (s) =>
    (await s.tools())
      .filter((t) => !t.startsWith('test_input_required_result_'))
      .sort()
      .join(','),
  call: async (s) => text(await s.call('test_simple_text', {})),
  progress: async (s) => {
    let n = 0;
    await s.call('test_tool_with_progress', {}, { progress: () => void n++ });
    return `progress ${n}`;
  },
  logging: async (s, kind) => {
    await s.call('test_tool_with_logging', {}, kind === 'v2-2026' ? { meta: { [LEVEL]: 'debug' } } : {});
    await sleep(100);
    return s.logs.join('|');
  },
  sampling: async (s) => text(await s.call('test_sampling', { prompt: 'hi' })),
  elicitation: async (s) => {
    const said = text(await s.call('test_elicitation', { message: 'who?' }));
    const m = /^(User response: action=\w+), content=(.*)$/.exec(said);
    if (!m) return said;
    const content = JSON.parse(m[2] as string) as Record<string, unknown>;
    return `${m[1]} ${JSON.stringify({ username: content['username'], email: content['email'] })}`;
  },
  resource: async (s) => text(await s.read('test://static-text')),
  prompt: async (s) => text(await s.prompt('test_simple_prompt')),
};
const everythingOps: Record<string, Op> = {
  tools: async (s) => (await s.tools()).sort().join(','),
  call: async (s) => text(await s.call('echo', { message: 'hello' })),
  progress: async (s) => {
    let n = 0;
    await s.call('trigger-long-running-operation', { duration: 0.05, steps: 5 }, { progress: () => void n++ });
    return `progress ${n}`;
  },
  sampling: async (s) => text(await s.call('trigger-sampling-request', { prompt: 'hi', maxTokens: 10 })),
  elicitation: async (s) => text(await s.call('trigger-elicitation-request', {})).slice(0, 80),
  roots: async (s) => {
    await sleep(400);
    return text(await s.call('get-roots-list', {})).replaceAll(ROOT, '<root>');
  },
};
const fsOps: Record<string, Op> = {
  roots: async (s) => {
    let seen = '';
    for (let i = 0; i < 20 && !seen.includes(ROOT); i++) {
      seen = text(await s.call('list_allowed_directories', {}));
      if (!seen.includes(ROOT)) await sleep(100);
    }
    return seen.replaceAll(ROOT, '<client root>').replaceAll(FS_HOME, '<server dir>');
  },
};

async function observe(url: string | (() => Promise<Session>), kind: ClientKind, op: Op): Promise<string> {
  let s: Session | undefined;
  try {
    s = typeof url === 'string' ? await open(kind, url) : await url();
    const session = s;
    return await Promise.race([op(session, kind), sleep(20_000).then(() => 'timeout')]);
  } catch (err) {
    return `error: ${(err as Error).message.slice(0, 120)}`;
  } finally {
    await s?.close().catch(() => undefined);
  }
}

/** server-filesystem directly over stdio, as the SDK v2 client would use it. */
async function fsDirect(): Promise<Session> {
  const c = new Client({ name: 'matrix', version: '1' }, { capabilities: { roots: { listChanged: true } } });
  c.setRequestHandler('roots/list', async () => ({ roots: [{ uri: `file://${ROOT}`, name: 'root' }] }));
  await c.connect(new StdioClientTransport({ command: process.execPath, args: [FS, FS_HOME], stderr: 'ignore' }));
  return {
    logs: [],
    call: (name, args) => c.callTool({ name, arguments: args }),
    tools: async () => (await c.listTools()).tools.map((t) => t.name),
    read: (uri) => c.readResource({ uri }),
    prompt: (name) => c.getPrompt({ name }),
    close: () => c.close(),
  };
}

// The peers.
const kit = (eras: 'both' | 'legacy' | 'modern') => startUpstreamKit({ name: 'conformance-surface', eras, registerV1: registerConformanceV1, registerV2: registerConformanceV2 });
const [dual, v1only, v2only] = await Promise.all([kit('both'), kit('legacy'), kit('modern')]);
const everythingServer = await startEverything();
const everything = everythingServer.child;
const everythingUrl = everythingServer.url;
const stdio = (args: string[]) => ({ stdio: { command: process.execPath, args } });
const routes = [
  { path: '/relay', upstream: dual.url },
  { path: '/stdio', upstream: stdio([SURFACE_STDIO]) },
  { path: '/stdio-every', upstream: stdio([EVERYTHING, 'stdio']) },
  { path: '/stdio-fs', upstream: stdio([FS, FS_HOME]) },
  { path: '/bridge-v1', upstream: v1only.url, bridge: 'auto' },
  { path: '/bridge-v2', upstream: v2only.url, bridge: 'auto' },
  { path: '/fed', servers: { s: { upstream: dual.url, prefix: '' } } },
  { path: '/fed-stdio', servers: { s: { upstream: stdio([SURFACE_STDIO]), prefix: '' } } },
  { path: '/fed-every', servers: { e: { upstream: everythingUrl, prefix: '' } } },
  { path: '/fed-fs', servers: { f: { upstream: stdio([FS, FS_HOME]), prefix: '' } } },
];
const sluice = await startTestGateway({ routes: routes as never });

// The same routes under `sluice serve --workers 2` (stdio and bridge kinds: the ones a worker holds).
const dir = mkdtempSync(join(tmpdir(), 'interop-workers-'));
const wport = await freePort();
writeFileSync(
  join(dir, 'sluice.yaml'),
  [
    `listen: [{ host: 127.0.0.1, port: ${wport} }]`,
    'routes:',
    `  - { path: /stdio, upstream: { stdio: { command: ${process.execPath}, args: [${SURFACE_STDIO}] } } }`,
    `  - { path: /stdio-every, upstream: { stdio: { command: ${process.execPath}, args: [${EVERYTHING}, stdio] } } }`,
    `  - { path: /bridge-v1, upstream: ${v1only.url}, bridge: auto }`,
    `  - { path: /fed, servers: { s: { upstream: ${dual.url}, prefix: '' } } }`,
  ].join('\n'),
);
const workers = spawn(process.execPath, [SLUICE, 'serve', '--config', join(dir, 'sluice.yaml'), '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
await new Promise<void>((resolve, reject) => {
  let t = '';
  workers.stderr?.on('data', (d: Buffer) => {
    t += d.toString();
    if (t.includes(`127.0.0.1:${wport}`)) resolve();
  });
  workers.once('exit', () => reject(new Error(`sluice --workers 2 exited: ${t}`)));
});
await sleep(1000);

interface Cell {
  kind: string;
  route: string;
  client: ClientKind;
  op: string;
  direct: string;
  through: string;
}
const cells: Cell[] = [];
const conformance: string[] = [];
const clients: ClientKind[] = ['v1', 'v2-2025', 'v2-2026'];
const base = (p: string): string => `${sluice.base}${p}`;
const wbase = (p: string): string => `http://127.0.0.1:${wport}${p}`;
const plan: [kind: string, route: string, through: (p: string) => string, direct: string | (() => Promise<Session>), ops: Record<string, Op>, only?: ClientKind[]][] = [
  ['relay', '/relay', base, dual.url, surfaceOps],
  ['stdio', '/stdio', base, dual.url, surfaceOps],
  ['stdio', '/stdio-every', base, everythingUrl, everythingOps, ['v1', 'v2-2025']],
  ['stdio', '/stdio-fs', base, fsDirect, fsOps, ['v1', 'v2-2025']],
  ['bridge', '/bridge-v1', base, dual.url, surfaceOps, ['v2-2026']],
  ['bridge', '/bridge-v2', base, dual.url, surfaceOps, ['v1', 'v2-2025']],
  ['bridge', '/stdio-every', base, everythingUrl, everythingOps, ['v2-2026']],
  ['federated', '/fed', base, dual.url, surfaceOps],
  ['federated', '/fed-stdio', base, dual.url, surfaceOps],
  ['federated', '/fed-every', base, everythingUrl, everythingOps, ['v1', 'v2-2025']],
  ['federated', '/fed-fs', base, fsDirect, fsOps, ['v1', 'v2-2025']],
  ['workers', '/stdio', wbase, dual.url, surfaceOps],
  ['workers', '/bridge-v1', wbase, dual.url, surfaceOps, ['v2-2026']],
  ['workers', '/fed', wbase, dual.url, surfaceOps],
];
try {
  for (const [kind, route, through, direct, ops, only] of plan.filter(([, r]) => !values.only || r.includes(values.only)))
    for (const client of only ?? clients)
      for (const [op, run] of Object.entries(ops)) {
        // server-everything and server-filesystem speak 2025 only: their direct run is a 2025 client's.
        const directClient: ClientKind = client === 'v2-2026' && ops !== surfaceOps ? 'v2-2025' : client;
        const d = await observe(direct, directClient, run);
        const t = await observe(through(route), client, run);
        cells.push({ kind, route, client, op, direct: d, through: t });
        process.stderr.write(`${d === t ? 'same' : 'DIFF'} ${kind} ${route} ${client} ${op}\n`);
      }
  if (values.conformance) {
    const rows: [string, string, string][] = [
      ['2025-11-25', dual.url, wbase('/stdio')],
      ['2025-11-25', everythingUrl, wbase('/stdio-every')],
      ['2026-07-28', base('/stdio-every'), wbase('/stdio-every')],
      ['2026-07-28', base('/bridge-v1'), wbase('/bridge-v1')],
      ['2025-11-25', dual.url, wbase('/fed')],
    ];
    for (const [req, direct, via] of rows) {
      const d = await runConformance(direct, req);
      const w = await runConformance(via, req);
      const lost = regressions(d.checks, w.checks);
      conformance.push(`- ${req}, ${via.replace(/^http:\/\/[^/]+/, '')} under --workers 2: ${passCount(w.checks)}/${w.checks.size} checks pass against ${passCount(d.checks)}/${d.checks.size} ${direct.startsWith(sluice.base) ? 'through one process' : 'directly'}${lost.length ? `; lost: ${lost.join(', ')}` : ', none lost'}`);
      process.stderr.write(`${conformance.at(-1)}\n`);
    }
  }
} finally {
  workers.kill('SIGTERM');
  await sluice.close();
  await Promise.all([dual.close(), v1only.close(), v2only.close()]);
  everything.kill('SIGTERM');
  for (const d of [dir, ROOT, FS_HOME]) rmSync(d, { recursive: true, force: true });
}

const kinds = [...new Set(cells.map((c) => c.kind))];
const lines = [
  '| route kind | cells identical to the direct run |',
  '|---|---|',
  ...kinds.map((k) => {
    const of = cells.filter((c) => c.kind === k);
    return `| ${k} | ${of.filter((c) => c.direct === c.through).length}/${of.length} |`;
  }),
  '',
  ...cells.filter((c) => c.direct !== c.through).map((c) => `- ${c.kind} ${c.route} ${c.client} ${c.op}: direct \`${c.direct.slice(0, 100)}\`, through \`${c.through.slice(0, 100)}\``),
  '',
  ...conformance,
  '',
];
process.stdout.write(lines.join('\n'));
if (values.out) writeFileSync(values.out, lines.join('\n'));
if (values.json) writeFileSync(values.json, JSON.stringify(cells, null, 2));
process.exit(0);
