// The response stages without sockets: each stage is a function of the exchange and the answer's
// head, so a hand-made exchange (real config, routes, guards and keys; a stand-in request and
// response object) is enough to check what it does to the headers and which transforms it attaches.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { SluiceError } from '../../../src/core/errors.ts';
import { buildConfig } from '../../../src/config/load.ts';
import type { ConfigInput } from '../../../src/config/schema.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { ListFilter } from '../../../src/proxy/list-filter.ts';
import type { GatewayContext, GatewayRoute } from '../../../src/proxy/context.ts';
import { newExchange, type DispatchedExchange, type ResponseHead } from '../../../src/proxy/exchange.ts';
import { ResponseTap } from '../../../src/proxy/payload-log.ts';
import { RESPONSE_STAGES } from '../../../src/proxy/pipeline.ts';
import { buildGuards } from '../../../src/proxy/route-guard.ts';
import { crossResponseHeaders, refuseEncodedBody } from '../../../src/proxy/upstream-headers.ts';
import { ownCorsHeaders, recordAnswer } from '../../../src/proxy/stages.ts';
import { sealSessionToken } from '../../../src/proxy/session-stages.ts';
import { compileRoutes } from '../../../src/routing/route-table.ts';
import { KeyRing } from '../../../src/session/key-ring.ts';
import { open, openSession } from '../../../src/session/token.ts';
import { TransformChain } from '../../../src/transport/body-transform.ts';
import { SseEndpointRewriter } from '../../../src/transport/sse-endpoint-rewriter.ts';
import { UpstreamClient } from '../../../src/transport/upstream-client.ts';

type RouteInput = ConfigInput['routes'][number];

function exchange(route: Partial<RouteInput>, req: { method?: string; headers?: IncomingHttpHeaders; url?: string } = {}): DispatchedExchange {
  const config = buildConfig({ routes: [{ path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', ...route }] }, 'test');
  const [compiled] = compileRoutes(config.routes);
  const guards = buildGuards(config.routes, { client: new UpstreamClient({ connectTimeoutMs: 1000, headersTimeoutMs: 0 }), env: {}, shared: undefined });
  const gatewayRoute: GatewayRoute = { ...compiled!, guard: guards.get('/mcp') };
  const ctx = { config, sessions: KeyRing.generate(), routes: [gatewayRoute], log: createLogger('silent'), logHashKey: Buffer.alloc(32) } as unknown as GatewayContext;
  const request = { method: req.method ?? 'POST', url: req.url ?? '/mcp', headers: req.headers ?? {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  const headersSet: Record<string, string> = {};
  const response = { getHeader: (n: string) => headersSet[n], setHeader: (n: string, v: string) => (headersSet[n] = v) } as unknown as ServerResponse;
  const ex = newExchange(ctx, request, response, { loopback: true, hosts: [], origins: [] } as never) as DispatchedExchange;
  ex.target = req.url ?? '/mcp';
  ex.route = gatewayRoute;
  ex.replica = gatewayRoute.pool.replicas[0]!;
  ex.upstreamTarget = '/mcp';
  return ex;
}

function head(ex: DispatchedExchange, status: number, upstream: IncomingHttpHeaders): ResponseHead {
  return { status, upstream, headers: {}, sse: String(upstream['content-type'] ?? '').startsWith('text/event-stream'), replica: ex.replica, transforms: [] };
}

describe('response stages', () => {
  it('crossResponseHeaders keeps end-to-end headers, drops hop-by-hop ones and marks SSE unbufferable', () => {
    const ex = exchange({});
    const h = head(ex, 200, { 'content-type': 'text/event-stream', connection: 'keep-alive, x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'mcp-session-id': 's', 'content-length': '10' });
    crossResponseHeaders(ex, h);
    assert.deepEqual(h.headers, { 'content-type': 'text/event-stream', 'mcp-session-id': 's', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  });

  it('ownCorsHeaders drops the upstream Access-Control-* headers when the route has CORS on, and only then', () => {
    const on = exchange({ cors: { allowOrigins: ['https://app.example'] } });
    const h = head(on, 200, {});
    h.headers = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };
    ownCorsHeaders(on, h);
    assert.deepEqual(h.headers, { 'content-type': 'application/json' });
    const off = exchange({});
    const g = head(off, 200, {});
    g.headers = { 'access-control-allow-origin': '*' };
    ownCorsHeaders(off, g);
    assert.deepEqual(g.headers, { 'access-control-allow-origin': '*' });
  });

  it('sealSessionToken hands the client a token that opens to the upstream session, never the id itself', () => {
    const ex = exchange({});
    const h = head(ex, 200, { 'mcp-session-id': 'upstream-42' });
    sealSessionToken(ex, h);
    const token = h.headers['mcp-session-id'] as string;
    assert.notEqual(token, 'upstream-42');
    assert.equal(ex.responseSessionId, token);
    assert.equal(openSession(ex.ctx.sessions, token)?.upstreamSession, 'upstream-42');
    assert.equal(openSession(ex.ctx.sessions, token)?.replica, ex.replica.id);
  });

  it('refuseEncodedBody refuses a compressed SSE stream and lets a compressed plain JSON answer through', () => {
    const ex = exchange({});
    assert.throws(() => refuseEncodedBody(ex, head(ex, 200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' })), (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_ERR_UPSTREAM_PROTOCOL');
    refuseEncodedBody(ex, head(ex, 200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }));
    refuseEncodedBody(ex, head(ex, 200, { 'content-type': 'text/event-stream', 'content-encoding': 'identity' }));
  });

  it('recordAnswer counts a 5xx against the replica only where the route opts in', () => {
    const counted = exchange({ ejection: { on5xx: true, consecutiveFailures: 2 } });
    recordAnswer(counted, head(counted, 503, {}));
    assert.equal(counted.replica.failures, 1);
    recordAnswer(counted, head(counted, 200, {}));
    assert.equal(counted.replica.failures, 0);
    const ignored = exchange({ ejection: { consecutiveFailures: 2 } });
    recordAnswer(ignored, head(ignored, 503, {}));
    assert.equal(ignored.replica.failures, 0);
  });

  it('the whole list attaches body transforms in stage order: list filter, endpoint rewrite, payload tap', () => {
    const ex = exchange({ policy: { rules: [{ effect: 'deny', names: ['secret*'] }] }, logPayloads: { enabled: true } }, { method: 'GET', url: '/mcp' });
    ex.era = undefined;
    const h = head(ex, 200, { 'content-type': 'text/event-stream' });
    for (const stage of RESPONSE_STAGES) stage(ex, h);
    assert.deepEqual(
      h.transforms.map((t) => t.constructor),
      [ListFilter, SseEndpointRewriter, ResponseTap],
    );
  });

  it('a refused upstream credential (resource-server mode) ends the answer with 502, not the 401', () => {
    const ex = exchange({ auth: { mode: 'resource-server', resource: 'https://mcp.example/mcp', issuer: 'https://issuer.example', upstreamCredential: { value: 'Bearer x' } } });
    assert.throws(() => {
      for (const stage of RESPONSE_STAGES) stage(ex, head(ex, 401, { 'www-authenticate': 'Bearer' }));
    }, (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_ERR_UPSTREAM_AUTH' && err.status === 502);
  });

  it('on a two-replica 2026-07-28 route, requestState and task ids reach the client sealed, every other byte as the upstream wrote it', () => {
    const ex = exchange({ upstream: ['http://127.0.0.1:9/mcp', 'http://127.0.0.1:10/mcp'] });
    ex.era = 'stateless';
    ex.rpc = { method: 'tools/call', name: 'x', id: 3, isRequest: true, batchSize: 1 };
    ex.replica = ex.route.pool.replicas[1]!;
    const sse = head(ex, 200, { 'content-type': 'text/event-stream' });
    for (const stage of RESPONSE_STAGES) stage(ex, sse);
    const chain = new TransformChain(sse.transforms);
    // A big integer (past 2^53) and odd spacing that a re-serialisation would change.
    const progress = 'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n';
    const answer = 'data: {"jsonrpc":"2.0", "id":3,"result":{"n":12345678901234567890,"resultType":"input_required","requestState":"v1.abc.def"}}\n\n';
    const out = chain.push(Buffer.from(progress + answer)).toString() + chain.end().toString();
    assert.ok(out.startsWith(progress), 'a notification passes byte for byte');
    const sealed = /"requestState":"([A-Za-z0-9_-]+)"/.exec(out)?.[1];
    assert.ok(sealed, out);
    assert.ok(out.includes('"id":3,"result":{"n":12345678901234567890,'), 'the rest of the answer is untouched');
    const claims = open(ex.ctx.sessions, 'request-state', sealed);
    assert.equal(claims?.value, 'v1.abc.def');
    assert.equal(claims?.replica, ex.replica.id);

    const json = head(ex, 200, { 'content-type': 'application/json', 'content-length': '200' });
    for (const stage of RESPONSE_STAGES) stage(ex, json);
    assert.equal(json.headers['content-length'], undefined, 'the length changes');
    const t = new TransformChain(json.transforms);
    const created = '{"jsonrpc":"2.0","id":3,"result":{"resultType":"task","taskId":"786512e2","status":"working"}}';
    const first = t.push(Buffer.from(created)).toString() + t.end().toString();
    const again = new TransformChain(((h) => (RESPONSE_STAGES.forEach((st) => st(ex, h)), h.transforms))(head(ex, 200, { 'content-type': 'application/json' })));
    const second = again.push(Buffer.from(created)).toString() + again.end().toString();
    assert.equal(first, second, 'one task reads as the same token in every answer');
    assert.equal(open(ex.ctx.sessions, 'task', (JSON.parse(first) as { result: { taskId: string } }).result.taskId)?.value, '786512e2');
  });

  it('on a one-replica route, or another era, nothing is sealed', () => {
    for (const [era, upstream] of [['stateless', 'http://127.0.0.1:9/mcp'], ['sessionful', ['http://127.0.0.1:9/mcp', 'http://127.0.0.1:10/mcp']]] as const) {
      const ex = exchange({ upstream: upstream as never });
      ex.era = era;
      ex.rpc = { method: 'tools/call', name: 'x', id: 3, isRequest: true, batchSize: 1 };
      const h = head(ex, 200, { 'content-type': 'application/json' });
      for (const stage of RESPONSE_STAGES) stage(ex, h);
      assert.equal(h.transforms.length, 0, era);
    }
  });
});
