// Order of requests on one HTTP/1 connection, and the first whose answer closes it. Node parses
// and hands over requests pipelined behind such an answer all the same (it resumes an unread
// body to discard it, and parses on); their answers can never be delivered, so they must not run
// upstream. WeakMaps: nothing to clean up when a connection goes.
import type { IncomingMessage } from 'node:http';

const counters = new WeakMap<object, number>();
const order = new WeakMap<IncomingMessage, number>();
const closers = new WeakMap<object, number>();

/** Numbers the request on its connection (called as it arrives). */
export function arrived(req: IncomingMessage): void {
  const n = (counters.get(req.socket) ?? 0) + 1;
  counters.set(req.socket, n);
  order.set(req, n);
}

/** The answer to `req` closes the connection. */
export function closesConnection(req: IncomingMessage): void {
  const n = order.get(req);
  if (n === undefined) return;
  const c = closers.get(req.socket);
  if (c === undefined || n < c) closers.set(req.socket, n);
}

/** `req` was pipelined behind a request whose answer closes the connection. */
export function behindClose(req: IncomingMessage): boolean {
  const c = closers.get(req.socket);
  const n = order.get(req);
  return c !== undefined && n !== undefined && n > c;
}
