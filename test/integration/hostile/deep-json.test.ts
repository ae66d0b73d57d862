// Issue 15 item 6: nesting deeper than limits.jsonDepth is refused by a byte scan before
// JSON.parse ever sees it (a 4 MiB body of brackets would block the event loop for most of a
// second). The scan's cost is measured in bench/ (micro-benchmarks), not timed here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JSON_HEADERS, rpc, send, startFakeUpstream, startTestGateway, type FakeUpstream, type TestGateway, RPC_OK } from '../../helpers.ts';
import { nestsDeeperThan } from '../../../src/security/json-depth.ts';

describe('deep JSON (issue 15.6)', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startFakeUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(RPC_OK));
    gw = await startTestGateway({ routes: [{ path: '/mcp', upstream: `${up.url}/mcp` }] });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('refuses a 4 MiB body of brackets with 400 -32600 and never forwards it', async () => {
    const r = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: Buffer.alloc(4 * 1024 * 1024 - 1, '[') });
    assert.equal(r.status, 400);
    const body = JSON.parse(r.body.toString()) as { error: { code: number; data: { sluice: string } } };
    assert.equal(body.error.code, -32600);
    assert.equal(body.error.data.sluice, 'SLUICE_ERR_JSON_TOO_DEEP');
    assert.equal(up.requests.length, 0);
  });

  it('passes nesting up to the limit, brackets inside strings and escaped quotes', async () => {
    const args = JSON.parse(`${'{"a":'.repeat(60)}1${'}'.repeat(60)}`) as Record<string, unknown>;
    const ok = await send(`${gw.base}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: rpc('tools/call', { name: 'x', arguments: { deep: args, text: '[[[[{{{{\\"[[[['.repeat(100) } }) });
    assert.equal(ok.status, 200);
    assert.equal(up.requests.length, 1);
  });

  it('counts depth outside strings only', () => {
    assert.equal(nestsDeeperThan(Buffer.from('[[["]]]]]]]]"]]]'), 3), false);
    assert.equal(nestsDeeperThan(Buffer.from('[[[[1]]]]'), 3), true);
    assert.equal(nestsDeeperThan(Buffer.from('["\\"[[[[[["]'), 1), false);
  });
});
