// Micro-benchmarks of per-request MCP work, timed in a loop in this process: the 2026-07-28
// header-vs-body check (with and without the base64 sentinel), and the JSON-RPC classification
// it rides on, the access line, session-token seal/open, the 2026-07-28 state sealer of multi-replica
// routes (issue 18), and the secure edge's per-request work:
// bearer JWT verification (keys cached), API-key lookup, the tool policy and a token bucket.
import { summarize } from '../../src/core/mcp.ts';
import { formatAccessLine, type AccessRecord } from '../../src/observability/access-log.ts';
import { headerBodyMismatch } from '../../src/security/header-body-check.ts';
import { KeyRing } from '../../src/session/key-ring.ts';
import { hashPrincipal, openSession, sealSession } from '../../src/session/token.ts';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ApiKeys, hashApiKey } from '../../src/security/bearer.ts';
import { JwtVerifier } from '../../src/security/jwt-verifier.ts';
import { MemoryBuckets } from '../../src/security/token-bucket.ts';
import { ToolPolicy } from '../../src/security/tool-policy.ts';
import { nestsDeeperThan } from '../../src/security/json-depth.ts';
import type { DispatchedExchange } from '../../src/proxy/exchange.ts';
import { stateRewriter } from '../../src/proxy/replica-state.ts';
import type { Replica } from '../../src/routing/replica-pool.ts';
import { open } from '../../src/session/token.ts';

export type MicroResult = { name: string; per_op_us: number | null; note?: string }[];

const BODY = {
  jsonrpc: '2.0',
  id: 7,
  method: 'tools/call',
  params: { name: 'echo', arguments: { text: 'hello', region: 'eu-west-1' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
};
const RAW = JSON.stringify(BODY);
const HEADERS = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'content-type': 'application/json' };
const HEADERS_B64 = { ...HEADERS, 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` };

const ACCESS: AccessRecord = {
  route: '/mcp',
  method: 'POST',
  path: '/mcp',
  client: '127.0.0.1',
  status: 200,
  era: 'stateless',
  rpcMethod: 'tools/call',
  rpcName: 'echo',
  latencyMs: 1.2,
  bytesIn: 160,
  bytesOut: 90,
  kind: 'relay',
  upstream: 'http://127.0.0.1:9000/mcp',
  replica: 'http://127.0.0.1:3000/mcp',
  server: undefined,
  session: undefined,
  error: undefined,
  outcome: 'ok',
  security: undefined,
};

const RAW_BYTES = Buffer.from(RAW);
const DEEP = Buffer.alloc(4 * 1024 * 1024, '[');
const WIDE = Buffer.from(`${'['.repeat(64)}${'"x",'.repeat(1_048_000)}0${']'.repeat(64)}`);
const RING = KeyRing.generate();
const CLAIMS = { route: '/mcp', replica: 'http://10.0.0.7:3000/mcp', upstreamSession: '5f0c2a4e-8d1b-4f55-9a0e-2c7d9b1e6a31', principal: hashPrincipal('https://issuer|user-42'), issuedAt: 1_790_000_000 };
const TOKEN = sealSession(RING, CLAIMS);

// The 2026-07-28 state sealer of a multi-replica route (issue 18): an answer it must rewrite, one
// it only scans, and opening the token on the retry.
const SEAL_EX = { ctx: { sessions: RING }, route: { path: '/mcp' }, rpc: { method: 'tools/call' }, principal: undefined } as unknown as DispatchedExchange;
const SEAL_REPLICA = { id: 'http://10.0.0.7:3000/mcp' } as Replica;
const INPUT_REQUIRED = Buffer.from(
  JSON.stringify({
    jsonrpc: '2.0',
    id: 7,
    result: { resultType: 'input_required', inputRequests: { name: { method: 'elicitation/create', params: { message: 'Your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } } } }, requestState: `v1.${'x'.repeat(160)}.${'y'.repeat(43)}` },
  }),
);
const PLAIN_ANSWER = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'hello '.repeat(40) }] } }));
const SEALED_STATE = (JSON.parse(((t) => t.push(INPUT_REQUIRED).toString() + t.end().toString())(stateRewriter(SEAL_EX, SEAL_REPLICA, false))) as { result: { requestState: string } }).result.requestState;
const through = (body: Buffer) => {
  const t = stateRewriter(SEAL_EX, SEAL_REPLICA, false);
  t.push(body);
  return t.end().length;
};

function time(name: string, iterations: number, fn: () => unknown): { name: string; per_op_us: number } {
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 20_000); i++) if (fn()) sink++; // warm-up for the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (fn()) sink++;
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) console.log(sink); // keeps the loop observable
  return { name, per_op_us: ns / iterations / 1000 };
}

async function timeAsync(name: string, iterations: number, fn: () => Promise<unknown>): Promise<{ name: string; per_op_us: number }> {
  for (let i = 0; i < Math.min(iterations, 500); i++) await fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn();
  return { name, per_op_us: Number(process.hrtime.bigint() - t0) / iterations / 1000 };
}

/** A verifier with its keys already cached (what every request after the first pays), and a token it accepts. */
async function jwtCase(alg: 'RS256' | 'ES256'): Promise<{ verifier: JwtVerifier; token: string; fresh: () => string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg }] };
  const verifier = new JwtVerifier({ issuer: 'https://as.example', audience: 'https://mcp.example/mcp', jwksUri: 'https://as.example/jwks', algorithms: [alg], clockToleranceMs: 30_000, cacheTtlMs: 3_600_000 }, async () => jwks);
  const token = await new SignJWT({ sub: 'user-42', scope: 'mcp:tools' }).setProtectedHeader({ alg, kid: 'k' }).setIssuer('https://as.example').setAudience('https://mcp.example/mcp').setExpirationTime('1h').sign(privateKey);
  await verifier.verify(token);
  // Distinct tokens (signed ahead, outside the timed loop) defeat the verification cache.
  const pool = await Promise.all(Array.from({ length: 64 }, (_, i) => new SignJWT({ sub: `user-${i}`, scope: 'mcp:tools' }).setProtectedHeader({ alg, kid: 'k' }).setIssuer('https://as.example').setAudience('https://mcp.example/mcp').setExpirationTime('1h').sign(privateKey)));
  let i = 0;
  // The verifier caches by token: clear it so each pool token is verified in full each round.
  const fresh = (): string => {
    if (i % pool.length === 0) (verifier as unknown as { verified: Map<string, unknown> }).verified.clear();
    return pool[i++ % pool.length]!;
  };
  return { verifier, token, fresh };
}

const POLICY = new ToolPolicy({
  default: 'deny',
  rules: [
    { effect: 'deny', methods: ['tools/call'], names: ['*_admin'], principals: ['intern-*'] },
    ...Array.from({ length: 8 }, (_, i) => ({ effect: 'allow' as const, methods: ['tools/call'], names: [`group${i}_*`], scopes: [`s${i}`] })),
    { effect: 'allow', methods: ['tools/call'], names: ['echo'] },
  ],
});
const KEYS = new ApiKeys(Array.from({ length: 20 }, (_, i) => ({ name: `key-${i}`, sha256: hashApiKey(`sk-${i}`), scopes: [] })));

export async function runMicro(quick: boolean): Promise<MicroResult> {
  const n = quick ? 200_000 : 1_000_000;
  const parsed = JSON.parse(RAW) as unknown;
  if (headerBodyMismatch(HEADERS, parsed) !== undefined || headerBodyMismatch(HEADERS_B64, parsed) !== undefined) {
    throw new Error('micro-benchmark input is not a matching request');
  }
  const rs = await jwtCase('RS256');
  const es = await jwtCase('ES256');
  const buckets = new MemoryBuckets();
  const spec = { capacity: 1e9, perMs: 1 };
  const who = { id: 'user-42', key: 'k', scopes: new Set(['s7']), claims: {} };
  const jwtRuns = quick ? 2_000 : 10_000;
  return [
    await timeAsync('bearer JWT verify, RS256, new token each time (keys cached)', jwtRuns, () => rs.verifier.verify(rs.fresh())),
    await timeAsync('bearer JWT verify, ES256, new token each time (keys cached)', jwtRuns, () => es.verifier.verify(es.fresh())),
    await timeAsync('bearer JWT verify, a token seen before (verification cached)', n / 4, () => rs.verifier.verify(rs.token)),
    time('API key lookup (SHA-256 of the key, 20 keys)', n / 4, () => KEYS.match('sk-19')),
    time('tool policy decision (10 rules, match on the last)', n, () => POLICY.allows('tools/call', 'echo', who)),
    time('token bucket take (memory)', n, () => buckets.take('route|principal', spec)),
    time('header-vs-body check (2026-07-28 tools/call, plain Mcp-Name)', n, () => headerBodyMismatch(HEADERS, parsed)),
    time('header-vs-body check (base64 sentinel Mcp-Name)', n, () => headerBodyMismatch(HEADERS_B64, parsed)),
    time('JSON.parse + JSON-RPC summary of the same body', n, () => summarize(JSON.parse(RAW))),
    time('access line (format + timestamp)', n, () => formatAccessLine(ACCESS, new Date().toISOString())),
    time('session-token seal + open (AES-256-GCM, principal-bound)', quick ? n / 4 : n / 2, () => openSession(RING, sealSession(RING, CLAIMS), CLAIMS.principal)),
    time('session-token open', n / 2, () => openSession(RING, TOKEN, CLAIMS.principal)),
    time('2026-07-28 state sealer: an input_required answer (parse, seal requestState, swap it in)', n / 4, () => through(INPUT_REQUIRED)),
    time('2026-07-28 state sealer: a plain tools/call answer (scanned, passed as it came)', n, () => through(PLAIN_ANSWER)),
    time('2026-07-28 sealed requestState open (on the retry)', n / 2, () => open(RING, 'request-state', SEALED_STATE)),
    time('JSON depth scan of the same body (limits.jsonDepth)', n, () => nestsDeeperThan(RAW_BYTES, 64)),
    time('JSON depth scan refusing 4 MiB of brackets', quick ? 20 : 100, () => nestsDeeperThan(DEEP, 64)),
    time('JSON depth scan of 4 MiB at depth 64 (worst case accepted)', quick ? 20 : 100, () => nestsDeeperThan(WIDE, 64)),
  ];
}
