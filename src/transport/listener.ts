// A public listener: plain HTTP/1.1, or TLS with HTTP/2 and HTTP/1.1 by ALPN (tls-listener.ts),
// with the request deadlines, size and connection limits of the config, and how shutdown closes
// its connections. What a request does once it has arrived is the caller's `handler`.
import { chmodSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { onClientError } from './client-error.ts';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config, ListenerConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { createTlsServer } from './tls-listener.ts';

/** A listening server and how shutdown closes its connections (HTTP/1.1 or TLS with HTTP/2). */
export interface Listening {
  server: NetServer;
  closeIdle(): void;
  closeAll(): void;
  /** Stops watching the certificate files (TLS). */
  unwatch(): void;
}

/**
 * Node's own deadlines for reading a request, set explicitly (its defaults are 60 s for the head
 * and 300 s for the whole request, checked only every 30 s): the head within requestHeaders, the
 * whole request as a backstop behind the body deadline Sluice keeps itself (read-body.ts).
 */
export function clientTimeouts(config: Config): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  const t = config.timeouts;
  const headers = t.requestHeaders > 0 ? t.requestHeaders : 0;
  const whole = headers > 0 && t.requestBody > 0 ? headers + t.requestBody + 1_000 : 0;
  return {
    headersTimeout: headers,
    requestTimeout: whole,
    connectionsCheckingInterval: Math.max(250, Math.min(1_000, Math.floor((headers || 1_000) / 4))),
  };
}

function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  const body = '{"error":{"code":"SLUICE_ERR_METHOD_NOT_ALLOWED","message":"Method not allowed: CONNECT"}}';
  socket.on('error', () => undefined);
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, POST, DELETE, OPTIONS, HEAD\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Binds one configured listener; rejects when the address cannot be bound. */
export async function openListener(
  l: ListenerConfig,
  config: Config,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  log: Logger,
): Promise<Listening> {
  let server: Listening;
  if (l.tls) {
    const files = l.tls;
    const tls = createTlsServer(
      files,
      { maxHeaderSize: config.limits.headerBytes, ...clientTimeouts(config) },
      handler,
      (err) =>
        err
          ? log.error({ cert: files.cert, err: err.message }, 'TLS certificate reload failed; kept the running one')
          : log.info({ cert: files.cert }, 'TLS certificate reloaded'),
    );
    if (config.limits.connections > 0) tls.server.maxConnections = config.limits.connections;
    server = { server: tls.server, closeIdle: tls.closeIdle, closeAll: tls.closeAll, unwatch: tls.unwatch };
  } else {
    const plain = createServer(
      { maxHeaderSize: config.limits.headerBytes, noDelay: true, keepAliveTimeout: 5_000, ...clientTimeouts(config) },
      handler,
    );
    if (config.limits.connections > 0) plain.maxConnections = config.limits.connections;
    // Node hands CONNECT to a 'connect' listener and closes the socket silently without one.
    plain.on('connect', refuseConnect);
    plain.on('clientError', onClientError);
    server = {
      server: plain,
      closeIdle: () => plain.closeIdleConnections(),
      closeAll: () => plain.closeAllConnections(),
      unwatch: () => undefined,
    };
  }
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => {
      server.unwatch();
      reject(err);
    };
    server.server.once('error', failed);
    server.server.listen(l.port, l.host, () => {
      server.server.off('error', failed);
      resolve();
    });
  });
  return server;
}

/**
 * A worker's private Unix socket (`serve --workers`): where the other workers hand it requests of
 * the broker sessions it holds. Its own (exclusive: not shared through the cluster primary),
 * readable only by this user.
 */
export async function openWorkerSocket(
  path: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  const server = createServer({ keepAliveTimeout: 5_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    server,
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
    unwatch: () => undefined,
  };
}
