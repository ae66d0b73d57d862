// Issue 15: a smuggling corpus on keep-alive connections (a canary request hidden in each; the
// upstream must never see it) and a bounded fuzz run of random HTTP requests and JSON-RPC bodies
// (no crash, no internal error, memory flat). Bounded in count and time; loopback only.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JSON_HEADERS, rawExchange, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway, RPC_OK } from '../../helpers.ts';

const CANARY = rpc('tools/call', { name: 'SMUGGLED_CANARY' }, 99);
const LEGIT = rpc('tools/list', {}, 1);

/** How long each keep-alive connection is watched for answers before it is let go. */
const WATCH_MS = 400;

function smuggled(port: number): string {
  return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${CANARY.length}\r\n\r\n${CANARY}`;
}

function corpus(port: number): [string, string][] {
  const inner = smuggled(port);
  const h = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n`;
  const chunked = (body: string) => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  return [
    ['CL.TE', `${h}Content-Length: ${LEGIT.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(LEGIT)}${inner}`],
    ['TE.CL', `${h}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunked(LEGIT)}${inner}`],
    ['TE obfuscated: chunked, identity', `${h}Transfer-Encoding: chunked, identity\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['TE obfuscated: xchunked', `${h}Transfer-Encoding: xchunked\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['TE with space before colon', `${h}Transfer-Encoding : chunked\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['two TE headers', `${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunked(LEGIT)}${inner}`],
    ['TE obs-fold', `${h}Transfer-Encoding:\r\n chunked\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['two different Content-Length', `${h}Content-Length: ${LEGIT.length}\r\nContent-Length: ${LEGIT.length + inner.length}\r\n\r\n${LEGIT}${inner}`],
    ['Content-Length with plus sign', `${h}Content-Length: +${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['Content-Length list', `${h}Content-Length: ${LEGIT.length}, ${LEGIT.length + inner.length}\r\n\r\n${LEGIT}${inner}`],
    ['bare LF chunk terminator', `${h}Transfer-Encoding: chunked\r\n\r\n${LEGIT.length.toString(16)}\n${LEGIT}\n0\n\n${inner}`],
    ['chunk size overflow', `${h}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\n${LEGIT}\r\n0\r\n\r\n${inner}`],
    ['chunk extension with CR', `${h}Transfer-Encoding: chunked\r\n\r\n${LEGIT.length.toString(16)};a=\rb\r\n${LEGIT}\r\n0\r\n\r\n${inner}`],
    ['NUL in a header value', `${h}X-A: a\0b\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['space in a header name', `${h}Content Length: 5\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}${inner}`],
    ['GET with a body holding a request', `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`],
    ['HTTP/1.0 request line with chunked', `POST /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(LEGIT)}${inner}`],
    ['absolute-form naming another host', `POST http://169.254.169.254/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${LEGIT.length}\r\nConnection: close\r\n\r\n${LEGIT}`],
  ];
}

describe('hostile wire input (issue 15)', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], logging: { level: 'warn' } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('a smuggling corpus on keep-alive connections: the hidden canary never reaches the upstream, at most one upstream request per outer one', async () => {
    const cases = corpus(gw.port);
    for (const [name, bytes] of cases) {
      const before = up.requests.length;
      await rawExchange(gw.port, bytes, WATCH_MS);
      const added = up.requests.slice(before);
      assert.ok(added.length <= 1, `${name}: ${added.length} upstream requests`);
      assert.ok(!added.some((r) => r.body.toString().includes('SMUGGLED_CANARY')), `${name}: the canary reached the upstream`);
      for (const r of added) assert.ok(new URL(r.url, 'http://u').pathname.startsWith('/mcp'), `${name}: ${r.url}`);
    }
    // The control: well-formed framing (tab as OWS) with a second request pipelined behind it is
    // two requests, each forwarded whole and on its own.
    const before = up.requests.length;
    const h = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n`;
    await rawExchange(gw.port, `${h}Transfer-Encoding:\tchunked\r\n\r\n${LEGIT.length.toString(16)}\r\n${LEGIT}\r\n0\r\n\r\n${smuggled(gw.port)}`, WATCH_MS);
    assert.deepEqual(up.requests.slice(before).map((r) => r.body.toString()), [LEGIT, CANARY]);
    const after = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: LEGIT });
    assert.equal(after.status, 200, 'still serving');
  });

  it('a bounded fuzz run: random requests and JSON-RPC bodies, no crash, no internal error, memory flat', async () => {
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;
    const atoms = ['null', 'true', '1', '-0', '1e999', '"x"', '"\\ud800"', '{}', '[]', '"\\u0000"', '"tools/call"', '2.5', '"2.0"'];
    const jsonish = (depth: number): string => {
      if (depth > 3 || rand(3) === 0) return pick(atoms);
      if (rand(2) === 0) return `[${Array.from({ length: rand(4) }, () => jsonish(depth + 1)).join(',')}]`;
      const keys = ['jsonrpc', 'id', 'method', 'params', 'name', 'arguments', 'result', 'error', '__proto__', 'constructor'];
      return `{${Array.from({ length: rand(5) }, () => `"${pick(keys)}":${jsonish(depth + 1)}`).join(',')}}`;
    };
    const base = Buffer.from(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nContent-Length: ${LEGIT.length}\r\n\r\n${LEGIT}`);
    const mutate = (b: Buffer): Buffer => {
      const out = Buffer.from(b);
      for (let k = 0, n = 1 + rand(6); k < n; k++) {
        const at = rand(out.length);
        const op = rand(4);
        if (op === 0) out[at] = rand(256);
        else if (op === 1) out[at] = pick([0x0d, 0x0a, 0x20, 0x3a, 0x00, 0x25, 0x2e, 0x2f]);
        else if (op === 2) return Buffer.concat([out.subarray(0, at), Buffer.from(pick(['\r\n', '%2e%2e/', '\r\nTransfer-Encoding: chunked', '\r\nContent-Length: 0', '..', '\\'])), out.subarray(at)]);
        else return out.subarray(0, at);
      }
      return out;
    };
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const deadline = Date.now() + 60_000;
    let sent = 0;
    const batch = async (make: () => Promise<unknown>, count: number): Promise<void> => {
      for (let i = 0; i < count && Date.now() < deadline; i += 16) {
        await Promise.all(Array.from({ length: Math.min(16, count - i) }, make));
        sent += 16;
      }
    };
    await batch(() => rawExchange(gw.port, mutate(base), 150), 800);
    const versions = [undefined, '2025-03-26', '2025-11-25', '2026-07-28'];
    await batch(async () => {
      const v = pick(versions);
      const headers: Record<string, string> = { ...JSON_HEADERS, ...(v ? { 'mcp-protocol-version': v } : {}), ...(rand(3) === 0 ? { 'mcp-method': 'tools/call', 'mcp-name': pick(['x', '=?base64?eA==?=', '']) } : {}) };
      const r = await send(`${gw.base}/mcp`, { method: 'POST', headers, body: jsonish(0) }).catch(() => undefined);
      if (r) assert.ok(r.status !== 500, `internal error for a fuzzed body: ${r.body.toString().slice(0, 200)}`);
    }, 800);
    assert.ok(sent >= 100, `fuzzed ${sent}`);
    assert.ok(!gw.logs.some((l) => l['msg'] === 'internal error'), 'no internal error logged');
    const ok = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: LEGIT });
    assert.equal(ok.status, 200, 'still serving after the fuzz run');
    const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    assert.ok(grown < 150, `RSS grew ${grown.toFixed(0)} MiB over the fuzz run`);
  });
});
