// TLS for a public listener: certificate and key from PEM files, TLS 1.2 or newer with Node's
// modern cipher defaults, HTTP/2 and HTTP/1.1 by ALPN, and the files watched so a renewed
// certificate is served to new connections without a restart (connections already open keep
// theirs).
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import { createSecureContext, type TLSSocket } from 'node:tls';

export interface TlsFiles {
  cert: string;
  key: string;
}

export class TlsConfigError extends Error {}

function load(files: TlsFiles): { cert: Buffer; key: Buffer } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.cert);
    key = readFileSync(files.key);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key }); // fails now, with a clear message, on a bad pair
  } catch (err) {
    throw new TlsConfigError(`${files.cert} / ${files.key}: ${(err as Error).message}`);
  }
  return { cert, key };
}

export interface TlsServer {
  server: Http2SecureServer;
  /** Stop watching the files. */
  unwatch(): void;
  /** Ask HTTP/2 sessions to finish (GOAWAY: open streams may end) and close idle HTTP/1.1 connections. */
  closeIdle(): void;
  /** Close every connection now. */
  closeAll(): void;
}

export function createTlsServer(
  files: TlsFiles,
  /** Node's request deadlines apply to HTTP/1.1 connections on this listener too. */
  options: {
    maxHeaderSize: number;
    headersTimeout: number;
    requestTimeout: number;
    connectionsCheckingInterval: number;
  },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  onReload: (error: Error | undefined) => void,
): TlsServer {
  const server = createSecureServer(
    {
      ...load(files),
      minVersion: 'TLSv1.2',
      allowHTTP1: true,
      settings: { maxHeaderListSize: options.maxHeaderSize },
      headersTimeout: options.headersTimeout,
      requestTimeout: options.requestTimeout,
      connectionsCheckingInterval: options.connectionsCheckingInterval,
    } as Parameters<typeof createSecureServer>[0],
    handler as unknown as Parameters<typeof createSecureServer>[1],
  );
  const sessions = new Set<Http2Session>();
  const sockets = new Set<TLSSocket>();
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  let timer: NodeJS.Timeout | undefined;
  // Renewals replace both files, often in two steps: wait for the writes to settle.
  const changed = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        server.setSecureContext({ ...load(files), minVersion: 'TLSv1.2' });
        onReload(undefined);
      } catch (err) {
        onReload(err as Error);
      }
    }, 200);
  };
  const watchers: FSWatcher[] = [files.cert, files.key].map((f) => watch(f, changed));
  return {
    server,
    unwatch: () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
    closeIdle: () => {
      for (const s of sessions) s.close();
    },
    closeAll: () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
    },
  };
}
