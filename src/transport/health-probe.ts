// Active health-check probes, through the route's guarded connector like any upstream
// connection. Without a path a replica is up when it accepts a connection (HAProxy's plain
// `check`); with a path, when GET on it answers below 500 within the timeout. Each probe uses
// its own short-lived connection so it never queues behind traffic.
import { Client } from 'undici';
import type { Connector } from './guarded-connect.ts';

export function probeConnect(url: URL, timeoutMs: number, connect: Connector): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(ok: boolean, socket?: { destroy(): void } | null): void {
      socket?.destroy();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    }
    connect(
      {
        hostname: url.hostname,
        host: url.host,
        protocol: url.protocol,
        port: url.port,
        servername: undefined,
        localAddress: null,
        httpSocket: undefined,
      },
      (err, socket) => {
        if (settled) return void socket?.destroy();
        finish(!err, socket);
      },
    );
  });
}

export async function probeHttp(origin: string, path: string, timeoutMs: number, connect: Connector): Promise<boolean> {
  const client = new Client(origin, { connect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
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
