// The gateway process: listeners, the request pipeline, and graceful shutdown.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import { accessWriter, type Logger } from '../observability/logger.ts';
import { compileRoutes } from '../routing/route-table.ts';
import { trustList } from '../security/forwarded.ts';
import { KeyRing } from '../session/key-ring.ts';
import { UpstreamClient } from '../transport/upstream-client.ts';
import type { GatewayContext } from './context.ts';
import { handleRequest } from './pipeline.ts';

export interface Gateway {
  readonly ctx: GatewayContext;
  /** Bound addresses, in listener order (useful with port 0). */
  readonly addresses: AddressInfo[];
  /** Stop accepting, let POSTs finish up to the drain deadline, end SSE streams with retry. */
  shutdown(): Promise<void>;
}

/** The key ring from config, else SLUICE_SESSION_KEYS, else a generated one (with a warning). */
export function sessionKeyRing(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): KeyRing {
  if (config.sessions.keys.length > 0) return new KeyRing(config.sessions.keys.map((k) => Buffer.from(k, 'base64url')));
  const fromEnv = env['SLUICE_SESSION_KEYS'];
  if (fromEnv?.trim()) return KeyRing.parse(fromEnv);
  log.warn('no session keys configured (sessions.keys or SLUICE_SESSION_KEYS): generated one; sessions will not survive a restart or span Sluice replicas');
  return KeyRing.generate();
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const ctx: GatewayContext = {
    sessions: sessionKeyRing(config, log),
    config,
    routes: compileRoutes(config.routes),
    client: new UpstreamClient({ connectTimeoutMs: config.timeouts.connect, headersTimeoutMs: config.timeouts.responseHeaders }),
    log,
    access: config.logging.access ? accessWriter(log) : undefined,
    trusted: trustList(config.trustedProxies),
    active: new Set(),
    draining: false,
  };
  const servers: Server[] = [];
  const addresses: AddressInfo[] = [];
  try {
    for (const l of config.listen) {
      const server = createServer({ maxHeaderSize: config.limits.headerBytes, noDelay: true, keepAliveTimeout: 5_000 }, (req, res) =>
        handleRequest(ctx, req, res),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      addresses.push(server.address() as AddressInfo);
    }
  } catch (err) {
    for (const s of servers) s.close();
    await ctx.client.close();
    throw err;
  }

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      ctx.draining = true;
      const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of servers) s.closeIdleConnections();
      const { drain, retryHint } = config.shutdown;
      for (const a of ctx.active) if (a.kind === 'stream') a.stop(retryHint);
      const deadline = Date.now() + drain;
      while ([...ctx.active].some((a) => a.kind === 'request') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const a of ctx.active) a.stop(retryHint);
      for (const s of servers) s.closeAllConnections();
      await closed;
      await ctx.client.close();
    })();
    return shuttingDown;
  };
  return { ctx, addresses, shutdown };
}
