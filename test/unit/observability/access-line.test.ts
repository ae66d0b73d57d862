// The hand-written access line: always one valid JSON object per line, whatever the input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAccessLine, type AccessRecord } from '../../../src/observability/access-log.ts';

const BASE: AccessRecord = {
  route: '/mcp',
  method: 'POST',
  path: '/mcp',
  client: '127.0.0.1',
  status: 200,
  era: 'stateless',
  rpcMethod: 'tools/call',
  rpcName: 'echo',
  latencyMs: 1.5,
  bytesIn: 10,
  bytesOut: 20,
  kind: 'relay',
  upstream: 'http://127.0.0.1:1/mcp',
  replica: 'http://127.0.0.1:3000/mcp',
  server: undefined,
  session: undefined,
  error: undefined,
  outcome: 'ok',
  security: undefined,
};

describe('access line', () => {
  it('carries every set field and the process-log envelope, and omits unset ones', () => {
    const line = formatAccessLine(BASE, '2026-11-24T00:00:00.000Z');
    assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1);
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(o, { level: 'info', time: '2026-11-24T00:00:00.000Z', svc: 'sluice', ...Object.fromEntries(Object.entries(BASE).filter(([, v]) => v !== undefined)), msg: 'access' });
  });

  it('stays one valid line with quotes, backslashes, control characters and U+2028 in the input', () => {
    const nasty = 'a"b\\c\nd\re\u0000f\u001b[31m\u2028g';
    const line = formatAccessLine({ ...BASE, path: nasty, rpcName: nasty, error: nasty, latencyMs: Number.NaN }, 't');
    assert.equal(line.split('\n').length, 2, 'exactly one line');
    assert.doesNotMatch(line.slice(0, -1), /[\u0000-\u001f]/, 'no raw control characters');
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.equal(o['path'], nasty);
    assert.equal(o['rpcName'], nasty);
    assert.equal(o['latencyMs'], 0);
  });

  it('escapes line separators, DEL/C1 controls and bidi overrides, and caps long fields', () => {
    const tricky = 'a\u2028b\u2029c\u007f\u009bd\u202ee\u2066f';
    const line = formatAccessLine({ ...BASE, path: tricky, error: 'x'.repeat(1_048_576) }, 't');
    assert.doesNotMatch(line, /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, 'none of them raw');
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.equal(o['path'], tricky, 'the value survives');
    assert.ok(line.length < 2_000, `capped: ${line.length}`);
    assert.match(String(o['error']), /…\[1048576 chars\]$/);
  });
});
