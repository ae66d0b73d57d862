// The SDK client's Transport over a supervised stdio child (stdio-child.ts): the bridge talks to a
// stdio server through the same supervision as a stdio session (process group, flood and line
// limits, TERM then KILL), so a bridged session's child is bounded and released the same way.
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import type { StdioConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { StdioChild } from './stdio-child.ts';

export class ChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private readonly cfg: StdioConfig;
  private readonly opts: { log: Logger; maxLine: number; exited?: () => void };
  private child: StdioChild | undefined;

  constructor(cfg: StdioConfig, opts: { log: Logger; maxLine: number; exited?: () => void }) {
    this.cfg = cfg;
    this.opts = opts;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves once the process is gone (after close, or by itself). */
  get gone(): Promise<void> {
    return this.child?.gone ?? Promise.resolve();
  }

  async start(): Promise<void> {
    this.child = new StdioChild(this.cfg, {
      log: this.opts.log,
      maxLine: this.opts.maxLine,
      events: {
        message: (m) => this.onmessage?.(m as JSONRPCMessage),
        exit: (_cause, detail) => {
          this.opts.exited?.();
          if (_cause !== 'stopped') this.onerror?.(new Error(`the stdio server is gone: ${detail}`));
          this.onclose?.();
        },
      },
    });
    await this.child.ready;
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.child?.send(message)) throw new Error('the stdio server is gone');
  }

  async close(): Promise<void> {
    this.child?.stop('stopped', 'the bridged session ended');
  }
}
