// TLS for a public listener: certificate and key from PEM files, TLS 1.2 or newer with Node's
// modern cipher defaults, and the files watched so a renewed certificate is served to new
// connections without a restart (connections already open keep theirs).
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';

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
  server: HttpsServer;
  /** Stop watching the files. */
  unwatch(): void;
}

export function createTlsServer(
  files: TlsFiles,
  options: { maxHeaderSize: number; keepAliveTimeout: number },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  onReload: (error: Error | undefined) => void,
): TlsServer {
  const server = createHttpsServer({ ...load(files), minVersion: 'TLSv1.2', maxHeaderSize: options.maxHeaderSize, keepAliveTimeout: options.keepAliveTimeout, noDelay: true }, handler);
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
  };
}
