// Which Sluice holds a piece of broker state, as its sealed tokens name it: this process (one
// worker of one instance) and, on a cluster (`cluster:`), the address its peers reach the
// instance at. A token names `<process>@<host:port>`; without a cluster, `<process>` alone.
import { randomUUID } from 'node:crypto';

/** This process. */
export const PROCESS = `sluice-${process.pid}-${randomUUID().slice(0, 8)}`;

let advertised: string | undefined;

/** The address this instance's peer listener is reached at (set once at start when `cluster:` is configured). */
export function advertise(address: string | undefined): void {
  advertised = address;
}

export function advertisedAddress(): string | undefined {
  return advertised;
}

/** What this process seals into its tokens as their owner. */
export function ownerTag(): string {
  return advertised ? `${PROCESS}@${advertised}` : PROCESS;
}

export interface Owner {
  process: string;
  /** The instance's peer address; undefined for a token of a Sluice without a cluster. */
  address: string | undefined;
}

export function parseOwner(tag: string): Owner {
  const at = tag.lastIndexOf('@');
  return at < 0 ? { process: tag, address: undefined } : { process: tag.slice(0, at), address: tag.slice(at + 1) };
}

/** Whether a token's owner is this very process. */
export function isMine(tag: string): boolean {
  return parseOwner(tag).process === PROCESS;
}
