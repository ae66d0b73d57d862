// `sluice auth hash-key [KEY]`: the SHA-256 to put in routes[].auth.apiKeys[].sha256, and
// `sluice auth new-key`: a fresh random API key with its hash. The key itself never goes into
// the config file; read from stdin when not given, so it stays out of shell history.
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../security/bearer.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function runAuth(args: string[], usage: (m: string) => never): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'new-key') {
    if (rest.length > 0) usage('auth new-key takes no arguments');
    const key = `sk-sluice-${randomBytes(24).toString('base64url')}`;
    process.stdout.write(`key:    ${key}\nsha256: ${hashApiKey(key)}\n`);
    return;
  }
  if (sub !== 'hash-key' || rest.length > 1) usage('auth hash-key [KEY] (KEY from stdin when left out) | auth new-key');
  const key = rest[0] ?? (await readStdin());
  if (!key) usage('auth hash-key: empty key');
  process.stdout.write(`${hashApiKey(key)}\n`);
}
