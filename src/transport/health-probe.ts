// Active health-check probes. Without a path a replica is up when it accepts a TCP connection
// (HAProxy's plain `check`); with a path, when GET on it answers below 500 within the timeout.
// Each probe uses its own short-lived connection so it never queues behind traffic.
import { connect } from 'node:net';
import { Client } from 'undici';

export function probeTcp(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function probeHttp(origin: string, path: string, timeoutMs: number): Promise<boolean> {
  const client = new Client(origin, { connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  try {
    const res = await client.request({
      path,
      method: 'GET',
      headers: { 'user-agent': 'sluice-health-check', accept: 'application/json, text/event-stream' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    res.body.destroy();
    return res.statusCode < 500;
  } catch {
    return false;
  } finally {
    void client.destroy().catch(() => undefined);
  }
}
