// Reads a request body into one Buffer, refusing as soon as it passes the limit: a declared
// Content-Length over the limit is refused before a single body byte is read. Plain listeners
// rather than an async iterator: this runs once per request on the hot path.
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../core/errors.ts';

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `${declared} bytes declared, limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) {
        stop();
        req.pause(); // the answer closes the connection; nothing more is read
        reject(new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `more than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onGone = (): void => {
      stop();
      reject(new SluiceError('SLUICE_ERR_BAD_REQUEST', 'the client closed the connection before the body ended'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}
