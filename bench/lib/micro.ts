// Micro-benchmarks of per-request MCP work, timed in a loop in this process: the 2026-07-28
// header-vs-body check (with and without the base64 sentinel), and the JSON-RPC classification
// it rides on, the access line, and session-token seal/open.
import { summarize } from '../../src/core/mcp.ts';
import { formatAccessLine, type AccessRecord } from '../../src/observability/access-log.ts';
import { headerBodyMismatch } from '../../src/security/header-body-check.ts';
import { KeyRing } from '../../src/session/key-ring.ts';
import { hashPrincipal, openSession, sealSession } from '../../src/session/token.ts';

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
  status: 200,
  era: 'stateless',
  rpcMethod: 'tools/call',
  rpcName: 'echo',
  latencyMs: 1.2,
  bytesIn: 160,
  bytesOut: 90,
  upstream: 'http://127.0.0.1:9000/mcp',
  replica: 'http://127.0.0.1:3000/mcp',
  session: undefined,
  error: undefined,
  outcome: 'ok',
  security: undefined,
};

const RING = KeyRing.generate();
const CLAIMS = { route: '/mcp', replica: 'http://10.0.0.7:3000/mcp', upstreamSession: '5f0c2a4e-8d1b-4f55-9a0e-2c7d9b1e6a31', principal: hashPrincipal('https://issuer|user-42'), issuedAt: 1_790_000_000 };
const TOKEN = sealSession(RING, CLAIMS);

function time(name: string, iterations: number, fn: () => unknown): { name: string; per_op_us: number } {
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 20_000); i++) if (fn()) sink++; // warm-up for the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (fn()) sink++;
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) console.log(sink); // keeps the loop observable
  return { name, per_op_us: ns / iterations / 1000 };
}

export async function runMicro(quick: boolean): Promise<MicroResult> {
  const n = quick ? 200_000 : 1_000_000;
  const parsed = JSON.parse(RAW) as unknown;
  if (headerBodyMismatch(HEADERS, parsed) !== undefined || headerBodyMismatch(HEADERS_B64, parsed) !== undefined) {
    throw new Error('micro-benchmark input is not a matching request');
  }
  return [
    time('header-vs-body check (2026-07-28 tools/call, plain Mcp-Name)', n, () => headerBodyMismatch(HEADERS, parsed)),
    time('header-vs-body check (base64 sentinel Mcp-Name)', n, () => headerBodyMismatch(HEADERS_B64, parsed)),
    time('JSON.parse + JSON-RPC summary of the same body', n, () => summarize(JSON.parse(RAW))),
    time('access line (format + timestamp)', n, () => formatAccessLine(ACCESS, new Date().toISOString())),
    time('session-token seal + open (AES-256-GCM, principal-bound)', quick ? n / 4 : n / 2, () => openSession(RING, sealSession(RING, CLAIMS), CLAIMS.principal)),
    time('session-token open', n / 2, () => openSession(RING, TOKEN, CLAIMS.principal)),
  ];
}
