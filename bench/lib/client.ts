// The load side, run as its own process on its own CPU. Three modes, each printing one JSON line:
//   rate URL RPS SECONDS CONNECTIONS BODY_JSON   open-loop requests at a fixed rate; latency is
//        measured from each request's scheduled time, so a stalled proxy cannot hide its queue
//   sse BASE_URL STREAMS EVENTS INTERVAL_MS      per-event lag of the raw upstream's stamped events
//   idle URL COUNT                               hold COUNT idle SSE streams; on "close" on stdin,
//        drop them all at once (FIN from the client) and exit
import { request as httpRequest, Agent } from 'node:http';
import type { Socket } from 'node:net';
import { Pool } from 'undici';
import { summarize } from './stats.ts';

const [mode, ...args] = process.argv.slice(2);
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

async function rate(url: string, rps: number, seconds: number, connections: number, body: string): Promise<void> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  // The first second warms connections and the JIT on both sides and is not recorded.
  const warm = rps;
  const total = Math.round(rps * seconds) + warm;
  const lat: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let done = 0;
  const start = performance.now();
  const finished = new Promise<void>((resolve) => {
    const one = (scheduled: number, record: boolean): void => {
      pool
        .request({ path: u.pathname + u.search, method: 'POST', headers: MCP_HEADERS, body })
        .then(async (r) => {
          await r.body.dump();
          if (!record) return;
          if (r.statusCode < 200 || r.statusCode > 299) non2xx += 1;
          lat.push(performance.now() - scheduled);
        })
        .catch(() => (errors += record ? 1 : 0))
        .finally(() => {
          done += 1;
          if (done === total) resolve();
        });
    };
    let sent = 0;
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rps) + 1);
      while (sent < due) {
        one(start + (sent / rps) * 1000, sent >= warm);
        sent += 1;
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  // Bounded: a target that stops answering cannot hold the run longer than the window + 10 s.
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise((r) => (bound = setTimeout(r, seconds * 1000 + 11_000)))]);
  clearTimeout(bound);
  const s = summarize(lat);
  print({ sent: total - warm, sent_with_warmup: total, ok: s.n - non2xx, non2xx, errors, lost: total - done, p50_ms: s.p50, p99_ms: s.p99, max_ms: s.max, seconds: (performance.now() - start) / 1000 });
  await pool.destroy();
}

async function sse(base: string, streams: number, events: number, intervalMs: number): Promise<void> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const lags: number[] = [];
  const firsts: number[] = [];
  let received = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = httpRequest(`${base}/sse?n=${events}&iv=${intervalMs}`, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
        let buf = '';
        let first = true;
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          const now = process.hrtime.bigint();
          buf += d;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const m = /"t":"(\d+)"/.exec(ev);
            if (!m?.[1]) continue;
            const lag = Number(now - BigInt(m[1])) / 1e6;
            lags.push(lag);
            received += 1;
            if (first) firsts.push(lag);
            first = false;
          }
        });
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.setTimeout(events * intervalMs + 10_000, () => req.destroy());
      req.end();
    });
  await Promise.all(Array.from({ length: streams }, one));
  const s = summarize(lags);
  const f = summarize(firsts);
  print({ expected: streams * events, received, p50_ms: s.p50, p99_ms: s.p99, max_ms: s.max, first_p50_ms: f.p50, first_max_ms: f.max });
}

async function idle(url: string, count: number): Promise<void> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const sockets: Socket[] = [];
  let open = 0;
  let failed = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let settled = 0;
    const settle = (): void => {
      settled += 1;
      if (settled === count) resolve();
    };
    for (let i = 0; i < count; i++) {
      const req = httpRequest(url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
        res.once('data', () => {
          open += 1;
          settle();
        });
        res.on('error', () => undefined);
      });
      req.on('socket', (s) => sockets.push(s));
      req.on('error', () => {
        failed += 1;
        settle();
      });
      req.setTimeout(30_000, () => req.destroy());
      req.end();
    }
    setTimeout(resolve, 60_000).unref();
  });
  print({ open, failed, open_ms: performance.now() - start });
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    if (!d.includes('close')) return;
    for (const s of sockets) s.end(); // a FIN, as a client that goes away cleanly sends
    setTimeout(() => {
      for (const s of sockets) s.destroy();
      print({ closed: sockets.length });
      process.exit(0);
    }, 100);
  });
  // Bounded: never hold streams longer than 5 minutes even if the orchestrator is gone.
  setTimeout(() => process.exit(0), 300_000).unref();
}

function print(o: object): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

const num = (i: number): number => Number(args[i]);
if (mode === 'rate') await rate(args[0] ?? '', num(1), num(2), num(3), args[4] ?? '{}');
else if (mode === 'sse') await sse(args[0] ?? '', num(1), num(2), num(3));
else if (mode === 'idle') await idle(args[0] ?? '', num(1));
else {
  process.stderr.write('usage: client.ts rate|sse|idle …\n');
  process.exit(2);
}
