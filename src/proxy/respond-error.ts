// The one place that turns any error into a response: catalogue status, and a JSON-RPC error
// body when the request was JSON-RPC (id echoed when known).
import { ERRORS, isSluiceError, SluiceError, type ErrorSpec } from '../core/errors.ts';
import type { Exchange } from './exchange.ts';
import { closesConnection } from './connection-order.ts';

export function toSluiceError(err: unknown): SluiceError {
  return isSluiceError(err) ? err : new SluiceError('SLUICE_ERR_INTERNAL', undefined, { cause: err });
}

function reasonOf(e: SluiceError): { reason?: string } {
  const reason = (ERRORS[e.code] as ErrorSpec).reason;
  return reason === undefined ? {} : { reason };
}

export function respondError(ex: Exchange, err: unknown): void {
  const e = toSluiceError(err);
  ex.outcome = e.code;
  ex.error = e.message;
  if (e.code === 'SLUICE_ERR_INTERNAL') ex.ctx.log.error({ err: e.cause }, 'internal error');
  const { res } = ex;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // Host/Origin refusals answer every method as JSON-RPC (what MCP clients and the DNS-rebinding
  // conformance check read), without an id: the request was not looked at. So does an unknown
  // session, on GET and DELETE too: clients read its JSON-RPC error to know they must start over.
  const rpc = ex.req.method === 'POST' || e.status === 403 || e.code === 'SLUICE_ERR_SESSION_NOT_FOUND';
  const payload = rpc
    ? {
        jsonrpc: '2.0',
        id: ex.rpc?.id ?? null,
        error: { code: e.rpcCode, message: e.message, data: { ...reasonOf(e), sluice: e.code } },
      }
    : { error: { code: e.code, message: e.message } };
  const body = JSON.stringify(payload);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...e.headers,
  };
  // The request body may be unread (413, early errors): don't keep a connection whose framing
  // we no longer track.
  if (!ex.req.complete && ex.req.httpVersionMajor < 2) {
    headers['connection'] = 'close';
    closesConnection(ex.req);
  }
  if (ex.req.httpVersionMajor >= 2) delete headers['connection']; // no connection-specific fields in HTTP/2
  res.writeHead(e.status, headers);
  ex.headersAt = performance.now();
  res.end(body);
  ex.bytesOut += Buffer.byteLength(body);
}
