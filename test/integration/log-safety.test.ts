// Log lines stay one valid JSON object per line whatever goes in (process log and access log),
// and sampling drops ordinary access lines but never a security event.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { JSON_HEADERS, rpc, send, startDemoUpstream, startTestGateway } from '../helpers.ts';

describe('log safety and sampling', () => {
  it('process log lines escape line separators, C1 and bidi controls, and cap long strings', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger('info', sink);
    const injected = 'tool\r\n{"level":"fatal"}\u2028\u2029\u001b[2J\u009b\u202eevil\u2066';
    log.warn({ route: injected, err: 'y'.repeat(1_048_576) }, 'upstream response broke off');
    log.flush();
    await new Promise((r) => setTimeout(r, 20));
    const lines = out.split('\n').filter(Boolean);
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    const o = JSON.parse(lines[0]!) as Record<string, string>;
    assert.equal(o['route'], injected);
    assert.ok(o['err']!.length < 2_100);
  });

  it('injection through tool names, header values, payloads and upstream errors: one valid, capped JSON line per record', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url, logPayloads: { enabled: true } }] });
    try {
      const evil = ['\r\n{"level":"fatal","msg":"forged"}', '\u2028\u2029', '\u001b[31mred\u001b[0m', '\u202egnp.exe', '\u0085\u009b', 'x'.repeat(1_048_576)];
      for (const e of evil) {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: `tool${e}`, arguments: { text: e } } });
        await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body });
        // A 2026-07-28 request whose Mcp-Name disagrees: the error (with both values) is logged.
        const stateless = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: `n${e.slice(0, 2000)}`, arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
        await send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from(`other${e.slice(0, 1000)}`).toString('base64')}?=` }, body: stateless });
      }
      await new Promise((r) => setTimeout(r, 400));
      const raw = gw.rawLog();
      const lines = raw.split('\n').filter(Boolean);
      assert.equal(lines.length, gw.logs.length, 'every record is one line');
      for (const line of lines) {
        assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
        assert.ok(line.length < 40_000, `line of ${line.length} chars`);
        JSON.parse(line);
      }
      assert.ok(!gw.logs.some((l) => l['msg'] === 'forged'), 'no forged record');
      const access = gw.logs.filter((l) => l['msg'] === 'access');
      assert.equal(access.length, evil.length * 2);
      assert.ok(access.some((l) => String(l['rpcName']).includes('\u202e')), 'the value survives, escaped');
      assert.ok(access.some((l) => l['outcome'] === 'SLUICE_ERR_HEADER_MISMATCH' && String(l['error']).length <= 1100));
      assert.ok(gw.logs.some((l) => l['msg'] === 'payload' && JSON.stringify(l).includes('chars]')), 'long payload strings are cut with their size');
    } finally {
      await gw.close();
      await up.close();
    }
  });

  it('at 1% sampling keeps about 1% of ordinary access lines and every security event', async () => {
    const up = await startDemoUpstream();
    const gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: up.url }], limits: { body: '1KiB' }, logging: { sample: 0.01 } });
    try {
      for (let batch = 0; batch < 40; batch++) {
        await Promise.all(Array.from({ length: 50 }, () => send(`${gw.base}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': 'gone' }, body: rpc('tools/list') })));
      }
      const big = rpc('tools/call', { name: 'echo', arguments: { text: 'z'.repeat(2048) } });
      const mismatch = { ...JSON_HEADERS, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list', 'mcp-name': 'echo' };
      const mismatchBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
      for (let i = 0; i < 50; i++) {
        assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: big })).status, 413);
        assert.equal((await send(`${gw.base}/mcp`, { method: 'POST', headers: mismatch, body: mismatchBody })).status, 400);
      }
      await new Promise((r) => setTimeout(r, 400));
      const access = gw.logs.filter((l) => l['msg'] === 'access');
      const ordinary = access.filter((l) => l['security'] === undefined);
      assert.ok(ordinary.length >= 1 && ordinary.length <= 80, `${ordinary.length} of 2000 ordinary lines kept`);
      assert.equal(access.filter((l) => l['security'] === 'limit-exceeded').length, 50);
      assert.equal(access.filter((l) => l['security'] === 'header-body-mismatch').length, 50);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
