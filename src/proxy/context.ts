// Everything a request needs from the running gateway, built once at start-up.
import type { BlockList } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Route } from '../routing/route-table.ts';
import type { KeyRing } from '../session/key-ring.ts';
import type { UpstreamClient } from '../transport/upstream-client.ts';

/** An exchange that graceful shutdown must wind down. */
export interface Drainable {
  /** 'stream': a long-lived SSE GET, ended at once; 'request': a POST, allowed to finish. */
  readonly kind: 'stream' | 'request';
  /** End now: SSE streams get a `retry:` hint when they sit between events. */
  stop(retryMs: number): void;
}

export interface GatewayContext {
  readonly config: Config;
  /** Seals and opens the session tokens clients see as Mcp-Session-Id. */
  readonly sessions: KeyRing;
  readonly routes: readonly Route[];
  readonly client: UpstreamClient;
  readonly log: Logger;
  /** Writes one access line; undefined when the access log is off. */
  readonly access: ((line: string) => void) | undefined;
  readonly trusted: BlockList;
  readonly active: Set<Drainable>;
  draining: boolean;
}
