// An SDK Transport to an SDK Server made in this process when the transport starts: how a
// 2026-07-28 caller of a federated route reaches a federated session. The modern front (the
// 2026-07-28 server the caller sees) connects to it as to any 2025 upstream, so the federation is
// written once, for the sessionful era, and served to both.
import { InMemoryTransport, type JSONRPCMessage, type Server, type Transport } from '@modelcontextprotocol/server';
import { inOrder } from './in-order.ts';

export class SessionPipe implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private inner: InMemoryTransport | undefined;
  private readonly make: () => Promise<Server>;

  constructor(make: () => Promise<Server>) {
    this.make = make;
  }

  async start(): Promise<void> {
    const server = await this.make();
    const [mine, theirs] = InMemoryTransport.createLinkedPair();
    mine.onmessage = inOrder((m) => this.onmessage?.(m));
    mine.onclose = () => this.onclose?.();
    mine.onerror = (e) => this.onerror?.(e);
    this.inner = mine;
    await server.connect(theirs);
    await mine.start();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.inner) throw new Error('the federated session is not open');
    await this.inner.send(message);
  }

  async close(): Promise<void> {
    await this.inner?.close();
  }
}
