// OpenTelemetry traces (in-memory exporter): one span per exchange, named and attributed from
// the JSON-RPC message, a child of the client's traceparent, and the parent of the upstream's.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, JSON_HEADERS, rpc, send, spawnSluice, startFakeUpstream, startTestGateway, RPC_OK } from '../helpers.ts';

describe('tracing', () => {
  it('makes one span per exchange and propagates W3C traceparent both ways', async () => {
    const up = await startFakeUpstream((_req, res, body) => {
      const msg = JSON.parse(body.toString() || '{}') as { id?: number };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { content: [] } }));
    });
    const exporter = new InMemorySpanExporter();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }], tracing: { enabled: true } }, { spanExporter: exporter });
    try {
      const clientTrace = '0af7651916cd43dd8448eb211c80319c';
      const clientSpan = 'b7ad6b7169203331';
      const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'weather', arguments: { city: 'Lyon' } } });
      assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, traceparent: `00-${clientTrace}-${clientSpan}-01`, tracestate: 'vendor=x' }, body: call })).status, 200);
      assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/list') })).status, 200);
      assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: '{' })).status, 400);
      await new Promise((r) => setTimeout(r, 100));
      const spans = exporter.getFinishedSpans();
      assert.equal(spans.length, 3, 'one span per exchange');
      const [toolSpan, listSpan, badSpan] = spans;
      assert.equal(toolSpan!.name, 'tools/call weather');
      assert.equal(toolSpan!.spanContext().traceId, clientTrace, "a child of the client's trace");
      assert.equal(toolSpan!.parentSpanContext?.spanId, clientSpan);
      assert.deepEqual(
        { route: toolSpan!.attributes['sluice.route'], method: toolSpan!.attributes['mcp.method.name'], tool: toolSpan!.attributes['gen_ai.tool.name'], status: toolSpan!.attributes['http.response.status_code'] },
        { route: '/mcp', method: 'tools/call', tool: 'weather', status: 200 },
      );
      assert.equal(listSpan!.name, 'tools/list');
      assert.notEqual(listSpan!.spanContext().traceId, clientTrace, 'no traceparent: a new trace');
      assert.equal(badSpan!.attributes['sluice.outcome'], 'SLUICE_ERR_PARSE');
      assert.equal(badSpan!.attributes['http.response.status_code'], 400);
      // The upstream saw Sluice's span as its parent, in the same trace, and no client tracestate.
      assert.equal(up.requests.length, 2);
      const [first, second] = up.requests;
      assert.equal(first!.headers['traceparent'], `00-${clientTrace}-${toolSpan!.spanContext().spanId}-01`);
      assert.equal(first!.headers['tracestate'], 'vendor=x', 'tracestate carried on by the propagator');
      assert.equal(second!.headers['traceparent'], `00-${listSpan!.spanContext().traceId}-${listSpan!.spanContext().spanId}-01`);
      assert.equal(first!.rawHeaders.filter((h) => h.toLowerCase() === 'traceparent').length, 1, 'one traceparent, not the client\'s and ours');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('exports over OTLP/HTTP where the OTEL_* variables say (a loopback collector), flushed at shutdown', async () => {
    const up = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const collector = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const dir = mkdtempSync(join(tmpdir(), 'sluice-otel-'));
    const port = await freePort();
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, `listen: [{ host: 127.0.0.1, port: ${port} }]\nroutes: [{ path: /mcp, upstream: "${up.url}/mcp" }]\ntracing: { enabled: true }\n`);
    const env = { ...process.env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`, OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=k1', OTEL_SERVICE_NAME: 'mcp-edge' };
    const sluice = await spawnSluice(['serve', '--config', file], `127.0.0.1:${port}/mcp`, env);
    try {
      assert.equal((await send(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'forecast', arguments: {} }) })).status, 200);
      assert.equal(await sluice.stop(), 0);
      const posts = collector.requests.filter((r) => r.method === 'POST' && r.url === '/v1/traces');
      assert.equal(posts.length, 1, 'the batch was flushed at shutdown');
      assert.equal(posts[0]!.headers['x-collector-key'], 'k1');
      const body = posts[0]!.body.toString();
      assert.match(body, /"mcp-edge"/);
      assert.match(body, /"tools\/call forecast"/);
    } finally {
      await sluice.stop();
      await up.close();
      await collector.close();
    }
  });

  it('is off by default: the client\'s traceparent passes through untouched', async () => {
    const up = await startFakeUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
    try {
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, traceparent: tp }, body: rpc('ping') });
      assert.equal(up.requests[0]!.headers['traceparent'], tp);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
