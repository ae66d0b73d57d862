// Reads a request body into one Buffer, refusing as soon as it passes the limit: a declared
// Content-Length over the limit is refused before a single body byte is read.
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../core/errors.ts';

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `${declared} bytes declared, limit is ${limit}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) throw new SluiceError('SLUICE_ERR_BODY_TOO_LARGE', `more than ${limit} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}
