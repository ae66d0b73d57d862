// Multi-process topologies for the scale-out tests: upstream replicas and Sluice gateways as
// child processes (so a test can kill or restart them), and official SDK clients whose every
// request goes to the next gateway in turn, the way a per-request load balancer would send it.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const ROOT = new URL('..', import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** SIGKILL, or SIGTERM and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function startProc(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ proc: Proc; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer): void => {
    out += c.toString('utf8');
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const proc: Proc = {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 20 s: ${args.join(' ')}\n${out}`)), 20_000);
    const check = (): void => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, match: m });
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ready: ${args.join(' ')}\n${out}`));
    });
  });
}

export async function startReplica(id: string, port = 0): Promise<Proc & { url: string; id: string }> {
  const { proc, match } = await startProc(['test/fixtures/replica-server.ts', id, String(port)], {}, /READY (\S+)/);
  return { ...proc, url: match[1] as string, id };
}

/** A Sluice process from bin/sluice.js with a config file; port 0 picks one (read from its banner). */
export async function startSluice(config: Record<string, unknown>, keys: string, port = 0): Promise<Proc & { base: string; port: number; file: string }> {
  const file = join(tmpdir(), `sluice-fleet-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify({ ...config, listen: [{ host: '127.0.0.1', port }] }));
  const { proc, match } = await startProc(['bin/sluice.js', 'serve', '--config', file], { SLUICE_SESSION_KEYS: keys }, /sluice: http:\/\/127\.0\.0\.1:(\d+)\//);
  const p = Number(match[1]);
  return { ...proc, port: p, base: `http://127.0.0.1:${p}`, file };
}

export interface FetchLog {
  /** GETs that carried Last-Event-ID, with their status. */
  resumes: number[];
  /** Requests a gateway refused (connection refused/reset, or 503 while shutting down) and the other one took. */
  failovers: number;
  /** How many responses had each status (after failover). */
  statuses: Map<number, number>;
}

/**
 * A fetch that sends each request to the next gateway in turn. When one refuses the connection or
 * answers "shutting down" (the request never ran), the next one gets it: a client-side load balancer.
 */
export function alternatingFetch(gateways: () => readonly string[], log: FetchLog): typeof fetch {
  // One rotation per method, so the long-lived GET streams are split evenly as well.
  const next = new Map<string, number>();
  return async (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const list = gateways();
    const lastEventId = new Headers(init?.headers).get('last-event-id');
    let lastErr: unknown;
    const method = init?.method ?? 'GET';
    const first = next.get(method) ?? 0;
    next.set(method, first + 1);
    for (let attempt = 0; attempt < list.length * 2; attempt++) {
      const base = list[(first + attempt) % list.length] as string;
      try {
        const res = await fetch(base + url.pathname + url.search, init);
        if (res.status === 503 && (await res.clone().text()).includes('SLUICE_ERR_SHUTTING_DOWN')) {
          log.failovers++;
          continue;
        }
        if (lastEventId && init?.method === 'GET') log.resumes.push(res.status);
        log.statuses.set(res.status, (log.statuses.get(res.status) ?? 0) + 1);
        return res;
      } catch (err) {
        if (init?.signal?.aborted) throw err;
        lastErr = err;
        log.failovers++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw lastErr;
  };
}

export interface Session {
  client: Client;
  owner: string;
  /** Data of the log messages that arrived on the session's GET stream. */
  pings: string[];
  errors: string[];
}

/** Connect an SDK v1 client through `fetch` and learn which replica owns the new session. */
export async function openSession(url: string, fetchImpl: typeof fetch, name: string): Promise<Session> {
  const client = new Client({ name, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: fetchImpl,
    reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 10 },
  });
  const s: Session = { client, owner: '', pings: [], errors: [] };
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void s.pings.push(String(n.params.data)));
  client.onerror = (err) => void s.errors.push(err.message);
  await client.connect(transport);
  s.owner = await callText(client, 'whoami', {});
  return s;
}

export async function callText(client: Client, name: string, args: Record<string, unknown>, onprogress?: (message: string | undefined) => void): Promise<string> {
  // A call whose stream died with its replica waits for no answer: 10 s, not the SDK's 60 s.
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 10_000, ...(onprogress ? { onprogress: (p: { message?: string }) => onprogress(p.message) } : {}) });
  const first = (r.content as { type: string; text?: string }[])[0];
  return first?.text ?? '';
}

/** Wait on a condition, polling; throws with `what` after the timeout (the one in helpers.ts). */
export { waitFor as until } from './helpers.ts';
