// `sluice sessions decode TOKEN` shows what a session token holds (for debugging routing);
// `sluice sessions new-key` prints a fresh key for SLUICE_SESSION_KEYS. Keys come from --keys or
// SLUICE_SESSION_KEYS (comma-separated base64url, newest first).
import { parseArgs } from 'node:util';
import { KeyRing, KeyRingError, newKeyText } from '../session/key-ring.ts';
import { hashPrincipal, openSession } from '../session/token.ts';

export function runSessions(args: string[], usage: (msg: string) => never): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { keys: { type: 'string' }, principal: { type: 'string' } },
    strict: true,
  });
  const [sub, token, ...extra] = positionals;
  if (sub === 'new-key' && !token) {
    process.stdout.write(`${newKeyText()}\n`);
    return;
  }
  if (sub !== 'decode' || !token || extra.length > 0) usage('sessions needs "decode TOKEN" or "new-key"');
  const keys = values.keys ?? process.env['SLUICE_SESSION_KEYS'];
  if (!keys) usage('sessions decode needs --keys or SLUICE_SESSION_KEYS');
  let ring: KeyRing;
  try {
    ring = KeyRing.parse(keys);
  } catch (err) {
    if (err instanceof KeyRingError) usage(err.message);
    throw err;
  }
  // Tokens bound to a principal open only with it; without --principal, try the token as anonymous.
  const claims = openSession(ring, token, values.principal === undefined ? undefined : hashPrincipal(values.principal));
  if (!claims) {
    process.stderr.write(
      'sluice: not a valid session token under these keys (tampered, foreign key, removed key, or another principal)\n',
    );
    process.exit(1);
  }
  const out = {
    route: claims.route,
    replica: claims.replica,
    upstreamSession: claims.upstreamSession,
    principalHash: claims.principal?.toString('hex') ?? null,
    issuedAt: new Date(claims.issuedAt * 1000).toISOString(),
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
