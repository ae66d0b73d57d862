// Order of requests on one HTTP/1 connection, and the first whose answer closes it. Node parses
// and hands over requests pipelined behind such an answer all the same (it resumes an unread
// body to discard it, and parses on); their answers can never be delivered, so they must not run
// upstream.
import type { IncomingMessage, ServerResponse } from 'node:http';

// Kept on the objects themselves under symbols: a WeakMap entry per request cost an ephemeron
// per request for the collector to trace.
const COUNT = Symbol('sluice.requests');
const ORDER = Symbol('sluice.order');
const CLOSER = Symbol('sluice.closer');

interface Numbered {
  [COUNT]?: number;
  [CLOSER]?: number;
}

/** Numbers the request on its connection (called as it arrives). */
export function arrived(req: IncomingMessage): void {
  const socket = req.socket as Numbered;
  const n = (socket[COUNT] ?? 0) + 1;
  socket[COUNT] = n;
  (req as { [ORDER]?: number })[ORDER] = n;
}

/** The answer to `req` closes the connection. */
export function closesConnection(req: IncomingMessage): void {
  const n = (req as { [ORDER]?: number })[ORDER];
  if (n === undefined) return;
  const socket = req.socket as Numbered;
  const c = socket[CLOSER];
  if (c === undefined || n < c) socket[CLOSER] = n;
}

/** `req` was pipelined behind a request whose answer closes the connection. */
export function behindClose(req: IncomingMessage): boolean {
  const c = (req.socket as Numbered)[CLOSER];
  const n = (req as { [ORDER]?: number })[ORDER];
  return c !== undefined && n !== undefined && n > c;
}

/**
 * An HTTP/1.0 request that asked to keep the connection: whether it may depends on its answer (an
 * unsized one, such as an event stream, ends the connection, as HTTP/1.0 has no chunking). Until
 * its answer is done, what is pipelined behind it counts as behind a closing answer; once the
 * answer is done and the connection kept, the mark is lifted.
 */
export function mayCloseConnection(req: IncomingMessage, res: ServerResponse): void {
  closesConnection(req);
  const n = (req as { [ORDER]?: number })[ORDER];
  res.once('finish', () => {
    const socket = req.socket as Numbered;
    if ((res as ServerResponse & { shouldKeepAlive?: boolean }).shouldKeepAlive && socket[CLOSER] === n)
      delete socket[CLOSER];
  });
}
