// Scale-out without a shared store: three SDK upstream replicas (each keeping sessions in its own
// memory) behind two Sluice processes that share a key ring, with every request alternating
// between the two. Mid-run one upstream replica is killed and one Sluice process restarted.
// The same workload then runs through HAProxy balancing each request round robin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { newKeyText } from '../../src/session/key-ring.ts';
import { alternatingFetch, callText, openSession, startReplica, startSluice, until, type FetchLog, type Proc, type Session } from '../fleet.ts';
import { freePort, sleep } from '../helpers.ts';

const CLIENTS = 200;
const CALLS = 20;
const KEYS = `${newKeyText()},${newKeyText()}`;

function routeConfig(replicas: { url: string; id: string }[]): Record<string, unknown> {
  return {
    routes: [
      {
        path: '/mcp',
        upstream: replicas.map((r) => ({ url: r.url, id: r.id })),
        healthCheck: { interval: '500ms', timeout: '500ms' },
        ejection: { consecutiveFailures: 3, duration: '30s' },
      },
    ],
    // Streams ended by a restart reconnect after 3 s: long enough that events emitted meanwhile
    // can only arrive through a Last-Event-ID resume.
    shutdown: { retryHint: '3s' },
  };
}

interface Workload {
  url: string;
  fetch: typeof fetch;
  /** Replicas killed during the run: their sessions may fail and must re-initialize. */
  killed: Set<string>;
  /** Called after every completed call with the global count. */
  onProgress?: (done: number) => void;
  /** Awaited before each client's last ping (to put it after a mid-run event). */
  beforeLastPing?: Promise<void>;
  /** Filled by the run: each client's current session. */
  live?: Map<number, Session>;
}

interface Outcome {
  finals: Session[];
  /** Final sessions that replaced one lost with the killed replica. */
  replacements: Set<Session>;
  unexpected: string[];
  wrongReplica: string[];
  reinitialized: number;
  notFoundSeen: number;
  done: number;
}

async function runWorkload(w: Workload): Promise<Outcome> {
  const out: Outcome = { finals: [], replacements: new Set(), unexpected: [], wrongReplica: [], reinitialized: 0, notFoundSeen: 0, done: 0 };
  const client = async (i: number): Promise<void> => {
    let s = await openSession(w.url, w.fetch, `client-${i}`);
    w.live?.set(i, s);
    for (let k = 0; k < CALLS; k++) {
      if (k === CALLS - 2 && w.beforeLastPing) await w.beforeLastPing;
      try {
        let got: string;
        if (k % 5 === 1) {
          const progress: (string | undefined)[] = [];
          got = await callText(s.client, 'whoami_progress', { steps: 3, intervalMs: 10 }, (m) => progress.push(m));
          if (progress.length !== 3 || progress.some((m) => m !== s.owner)) out.wrongReplica.push(`client ${i}: progress ${JSON.stringify(progress)} owner ${s.owner}`);
        } else if (k === 3 || k === CALLS - 2) {
          got = await callText(s.client, 'ping_later', { delayMs: 10 });
        } else {
          got = await callText(s.client, 'whoami', {});
        }
        if (got !== s.owner) out.wrongReplica.push(`client ${i} call ${k}: ${got} answered, owner ${s.owner}`);
        out.done++;
        w.onProgress?.(out.done);
      } catch (err) {
        const msg = (err as Error).message;
        if (!w.killed.has(s.owner)) {
          out.unexpected.push(`client ${i} call ${k} (owner ${s.owner}): ${msg}`);
          continue;
        }
        if (/404|Session not found/i.test(msg)) out.notFoundSeen++;
        await s.client.close().catch(() => undefined);
        s = await openSession(w.url, w.fetch, `client-${i}-again`);
        w.live?.set(i, s);
        out.reinitialized++;
        out.replacements.add(s);
        if (w.killed.has(s.owner)) out.unexpected.push(`client ${i}: re-initialized onto killed replica ${s.owner}`);
        k--;
      }
      await sleep(Math.floor(Math.random() * 15));
    }
    out.finals.push(s);
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
  return out;
}

/** Each final session got its pings on its GET stream, all from its owner. */
async function checkPings(finals: Session[], expected: (s: Session) => number): Promise<void> {
  await until(() => finals.every((s) => s.pings.length >= expected(s)), 10_000, 'pings on the GET streams').catch(() => undefined);
  const short = finals.filter((s) => s.pings.length < expected(s)).map((s) => `${s.owner}: ${s.pings.length} pings, errors ${JSON.stringify(s.errors.slice(0, 3))}`);
  assert.deepEqual(short.slice(0, 5), [], `${short.length} sessions missed pings on their GET stream`);
  const foreign = finals.flatMap((s) => s.pings.filter((p) => p !== `ping from ${s.owner}`));
  assert.deepEqual(foreign, []);
}

describe('scale-out: replicas behind several Sluice processes, no shared store', { timeout: 300_000 }, () => {
  const procs: Proc[] = [];
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  });

  it(`${CLIENTS} SDK clients x ${CALLS} calls, requests alternating between two Sluice processes; one replica killed and one Sluice restarted mid-run`, async () => {
    const replicas = await Promise.all(['r1', 'r2', 'r3'].map((id) => startReplica(id)));
    procs.push(...replicas);
    const config = routeConfig(replicas);
    const s1 = await startSluice(config, KEYS);
    let s2 = await startSluice(config, KEYS);
    procs.push(s1, s2);
    const log: FetchLog = { resumes: [], failovers: 0, statuses: new Map() };
    const gateways = [s1.base, s2.base];
    const fetchImpl = alternatingFetch(() => gateways, log);
    const killed = new Set<string>();
    const total = CLIENTS * CALLS;
    let killedAt = 0;
    let restart: Promise<void> | undefined;
    let resumesBeforeRestart = 0;
    const live = new Map<number, Session>();
    const pingedAtRestart = new Set<Session>();
    const restartErrors: string[] = [];
    const result = await runWorkload({
      url: `${s1.base}/mcp`,
      fetch: fetchImpl,
      killed,
      onProgress: (done) => {
        if (done >= total * 0.3 && killed.size === 0) {
          killed.add('r3');
          killedAt = done;
          void replicas[2]?.stop('SIGKILL');
        }
        if (done >= total * 0.55 && !restart) {
          resumesBeforeRestart = log.resumes.length;
          // Each session asks for a ping 1.5 s from now, then one Sluice stops: the pings for
          // the streams it carried are emitted while those streams are down (retry hint 3 s).
          for (const s of live.values()) {
            if (killed.has(s.owner)) continue;
            pingedAtRestart.add(s);
            callText(s.client, 'ping_later', { delayMs: 1500 }).catch((err: unknown) => restartErrors.push((err as Error).message));
          }
          restart = (async () => {
            await s2.stop('SIGTERM');
            s2 = await startSluice(config, KEYS, s2.port);
            procs.push(s2);
          })();
          restartGate.resolve();
        }
      },
      live,
      // The last ping waits until every stream cut by the restart is back (retry hint 3 s): a
      // session re-initialized after the kill had no event id yet, so a ping sent while its
      // stream was down could not be replayed to it (by design: no Last-Event-ID, no replay).
      beforeLastPing: restartGate.promise.then(() => restart).then(async () => void (await sleep(4000))),
    });
    assert.ok(killedAt > 0 && restart, 'the mid-run events happened');
    assert.deepEqual(result.unexpected.slice(0, 10), [], `${result.unexpected.length} failures in sessions whose replica was alive`);
    assert.deepEqual(result.wrongReplica.slice(0, 10), [], 'every call and every progress notification came from the session owner');
    assert.equal(result.finals.length, CLIENTS);
    assert.ok(result.reinitialized > 0, 'sessions of the killed replica re-initialized');
    // The killed replica's sessions were told 404 (on a call or on a stream resume), and no
    // client ever saw a 5xx from Sluice: a lost owner is 404, never 502.
    assert.ok((log.statuses.get(404) ?? 0) > 0, `404s seen: ${JSON.stringify([...log.statuses])}`);
    assert.deepEqual([...log.statuses].filter(([st]) => st >= 500), [], `no 5xx reached a client: ${JSON.stringify([...log.statuses])}`);
    assert.ok(result.done >= total, `all ${total} calls answered (${result.done})`);
    // Every session's GET stream carried all its pings, from its owner: the one asked for at the
    // restart (emitted while the restarted Sluice's streams were down, so delivered only by a
    // Last-Event-ID resume through the other Sluice) and the last one. Replacements made before
    // the restart had no event id yet to resume from: they must get at least the last ping.
    assert.deepEqual(restartErrors, []);
    await checkPings(result.finals, (s) => (result.replacements.has(s) ? 1 : 3));
    assert.ok(result.finals.filter((s) => !result.replacements.has(s) && pingedAtRestart.has(s)).length > CLIENTS / 2);
    const resumed = log.resumes.slice(resumesBeforeRestart).filter((st) => st === 200).length;
    assert.ok(resumed >= 30, `GET streams resumed with Last-Event-ID after the restart: ${resumed}`);
    assert.deepEqual(result.finals.flatMap((s) => s.errors), [], 'no transport errors in the sessions that finished');
    await Promise.all(result.finals.map((s) => s.client.close().catch(() => undefined)));
  });

  it('works identically with HAProxy balancing every request round robin in front of two Sluice processes', async () => {
    const replicas = await Promise.all(['h1', 'h2', 'h3'].map((id) => startReplica(id)));
    procs.push(...replicas);
    const config = routeConfig(replicas);
    const s1 = await startSluice(config, KEYS);
    const s2 = await startSluice(config, KEYS);
    procs.push(s1, s2);
    const port = await freePort();
    const cfg = join(tmpdir(), `sluice-haproxy-${process.pid}.cfg`);
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 4000',
        'defaults',
        '  mode http',
        '  timeout connect 5s',
        '  timeout client 1h',
        '  timeout server 1h',
        '  timeout http-keep-alive 10s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend sluice',
        'backend sluice',
        '  balance roundrobin',
        `  server s1 127.0.0.1:${s1.port}`,
        `  server s2 127.0.0.1:${s2.port}`,
        '',
      ].join('\n'),
    );
    const haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push({ child: haproxy, output: () => '', stop: async () => void haproxy.kill('SIGKILL') });
    let herr = '';
    haproxy.stderr.on('data', (c: Buffer) => (herr += c.toString()));
    await until(() => herr.includes('Loading success') || haproxy.exitCode !== null, 10_000, 'haproxy').catch(() => undefined);
    assert.equal(haproxy.exitCode, null, `haproxy failed to start: ${herr}`);
    await sleep(300);
    const result = await runWorkload({ url: `http://127.0.0.1:${port}/mcp`, fetch, killed: new Set() });
    assert.deepEqual(result.unexpected.slice(0, 10), [], `${result.unexpected.length} failures`);
    assert.deepEqual(result.wrongReplica.slice(0, 10), []);
    assert.equal(result.done, CLIENTS * CALLS);
    await checkPings(result.finals, () => 2);
    // Stateless 2026-07-28 calls (official SDK v2 client) are spread over the replicas.
    const v2 = new ClientV2({ name: 'stateless', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await v2.connect(new TransportV2(new URL(`http://127.0.0.1:${port}/mcp`)));
    const answered = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await v2.callTool({ name: 'whoami', arguments: {} });
      answered.add((r.content as { text: string }[])[0]?.text ?? '');
    }
    await v2.close();
    assert.deepEqual([...answered].sort(), ['h1', 'h2', 'h3']);
    // HAProxy really spread each session's requests over both Sluice processes.
    const sessionsOf = (p: Proc) => new Set([...p.output().matchAll(/"session":"([0-9a-f]{16})"/g)].map((m) => m[1]));
    const a = sessionsOf(s1);
    const b = sessionsOf(s2);
    const both = [...a].filter((x) => b.has(x)).length;
    assert.ok(both >= CLIENTS * 0.9, `sessions served by both Sluice processes: ${both} of ${CLIENTS}`);
    await Promise.all(result.finals.map((s) => s.client.close().catch(() => undefined)));
  });
});

const restartGate = (() => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
})();
