// Reads a request body into one Buffer, refusing as soon as it passes the limit: a declared
// Content-Length over the limit is refused before a single body byte is read. Plain listeners
// rather than an async iterator: this runs once per request on the hot path. Two more bounds
// make slow or unfinished uploads cheap to refuse: a deadline for the whole body (a trickle of
// one byte every few seconds cannot hold a socket and its buffers for minutes), and a budget
// shared by all bodies in memory (hundreds of sockets each stopping just short of the limit
// cannot take the process's memory).
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../core/errors.ts';

/** Bytes held by request bodies, process-wide; a body's share goes back when its exchange ends. */
export class BodyBudget {
  used = 0;
  cap: number;

  constructor(cap: number) {
    this.cap = cap;
  }

  take(n: number): boolean {
    if (this.used + n > this.cap) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

export interface BodyLimits {
  limit: number;
  /** ms for the whole body; 0: none. */
  deadlineMs: number;
  budget: BodyBudget;
  /** Called with what a complete body took from the budget; the caller gives it back when the exchange ends. */
  held(bytes: number): void;
}

export function readBody(req: IncomingMessage, o: BodyLimits): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const { limit, budget } = o;
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(
      new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `${declared} bytes declared, limit is ${limit}`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (keep: boolean): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      if (keep) return o.held(total);
      // A refused or abandoned body is dropped now, and its share with it.
      budget.give(total);
      chunks.length = 0;
    };
    const refuse = (err: SluiceError): void => {
      stop(false);
      req.pause(); // the answer closes the connection; nothing more is read
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (total + chunk.length > limit)
        return refuse(new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `more than ${limit} bytes`));
      if (!budget.take(chunk.length))
        return refuse(
          new SluiceError('SLUICE_ERR_BODY_MEMORY', `${budget.cap} bytes in use by request bodies`, {
            headers: { 'retry-after': '1' },
          }),
        );
      total += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop(true);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onGone = (): void => {
      stop(false);
      reject(new SluiceError('SLUICE_ERR_BAD_REQUEST', 'the client closed the connection before the body ended'));
    };
    if (o.deadlineMs > 0)
      timer = setTimeout(
        () => refuse(new SluiceError('SLUICE_ERR_REQUEST_TIMEOUT', `body not complete after ${o.deadlineMs} ms`)),
        o.deadlineMs,
      );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}
