// What a listener does with bytes it cannot parse as a request. Node's default answers 400 (431,
// 408, 413 for their cases) and destroys the socket, even while the request before them is still
// being answered: a client that sends `Connection: close` (or HTTP/1.0) and pipelines more behind
// it lost the first answer although that request ran upstream. Bytes after a request that closes
// the connection (HPE_CLOSED_CONNECTION) are ignored instead: the answer in progress is
// delivered, and Node closes the connection after it, as the client asked.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

const ANSWERS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

export function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Node's own: the response the socket is writing now, if any.
  const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code === 'HPE_CLOSED_CONNECTION' && pending && !pending.writableFinished) return;
  const net = socket as Duplex & { bytesWritten?: number };
  if (socket.writable && (net.bytesWritten ?? 0) === 0) {
    const status = ANSWERS[err.code ?? ''] ?? '400 Bad Request';
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(err);
}
