// The SDK client's Transport over a supervised stdio child (stdio-child.ts): the bridge talks to a
// stdio server through the same supervision as a stdio session (process group, flood and line
// limits, TERM then KILL), so a bridged session's child is bounded and released the same way.
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import type { StdioConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProcessSlots } from './process-slots.ts';
import { StdioChild } from './stdio-child.ts';
import { inOrder } from './in-order.ts';

export interface ChildTransportOptions {
  log: Logger;
  maxLine: number;
  /** The server's process count: a slot is taken before the spawn (or start fails) and given back once reaped. */
  slots: ProcessSlots;
  caller: string | undefined;
}

export class ChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private readonly cfg: StdioConfig;
  private readonly opts: ChildTransportOptions;
  private child: StdioChild | undefined;

  constructor(cfg: StdioConfig, opts: ChildTransportOptions) {
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
    const slot = this.opts.slots.take(this.opts.caller);
    const deliver = inOrder((m) => this.onmessage?.(m));
    this.child = new StdioChild(this.cfg, {
      log: this.opts.log,
      maxLine: this.opts.maxLine,
      slot,
      events: {
        message: (m) => deliver(m as JSONRPCMessage),
        exit: (_cause, detail) => {
          if (_cause !== 'stopped') this.onerror?.(new Error(`the stdio server is gone: ${detail}`));
          this.onclose?.();
        },
      },
    });
    await this.child.ready;
  }

  async send(message: JSONRPCMessage): Promise<void> {
    // A child that stopped reading makes the caller wait (then fail), never Sluice's memory grow.
    if (this.child && !this.child.hasRoom && !(await this.child.room(this.cfg.stdinWait)))
      throw new Error(`the stdio server has not read its input for ${this.cfg.stdinWait} ms (stdio.stdinWait)`);
    if (!this.child?.send(message)) throw new Error('the stdio server is gone');
  }

  async close(): Promise<void> {
    this.child?.stop('stopped', 'the bridged session ended');
  }
}
