// The method rules of the modern front (modern-methods.ts): what a 2025 upstream of given
// capabilities serves to a 2026-07-28 client, which calls may ask back, and a 2025 "resource not
// found" in the 2026-07-28 words.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { INTERACTIVE, listenFilter, servesMethod, withRequestedUri } from '../../../src/broker/modern-methods.ts';

describe('modern front method rules', () => {
  it('serves a method when the upstream declares its capability; the SDK serves discover, listen and ping', () => {
    const tools = { tools: {} };
    assert.ok(servesMethod(tools, 'tools/call'));
    assert.ok(servesMethod(tools, 'server/discover'));
    assert.ok(servesMethod(tools, 'subscriptions/listen'));
    assert.ok(servesMethod({}, 'ping'));
    assert.ok(!servesMethod(tools, 'prompts/get'));
    assert.ok(!servesMethod(tools, 'completion/complete'));
    assert.ok(servesMethod({ completions: {} }, 'completion/complete'));
    // Removed in 2026-07-28: subscriptions ride the listen stream.
    assert.ok(!servesMethod({ resources: { subscribe: true } }, 'resources/subscribe'));
    assert.ok(!servesMethod(tools, 'tools/unknown'));
    assert.ok(servesMethod({ tasks: {} }, 'tasks/get'));
  });

  it('calls that may ask the client back are the interactive ones; listen filters are read from the body', () => {
    assert.deepEqual([...INTERACTIVE].sort(), ['completion/complete', 'prompts/get', 'resources/read', 'tools/call']);
    assert.equal(listenFilter({ method: 'tools/list' }), undefined);
    assert.deepEqual(listenFilter({ method: 'subscriptions/listen' }), {});
    assert.deepEqual(
      listenFilter({ method: 'subscriptions/listen', params: { notifications: { resourceSubscriptions: ['a://b'] } } }),
      { resourceSubscriptions: ['a://b'] },
    );
  });

  it("a 2025 resource-not-found becomes -32602 with data.uri; other errors pass as they were", () => {
    const read = { method: 'resources/read', params: { uri: 'file:///gone' } };
    const out = withRequestedUri({ code: -32002, message: 'Resource not found' }, read) as {
      code: number;
      data: { uri: string };
    };
    assert.equal(out.code, -32602);
    assert.equal(out.data.uri, 'file:///gone');
    const other = { code: -32603, message: 'boom' };
    assert.equal(withRequestedUri(other, read), other);
    const elsewhere = { code: -32002 };
    assert.equal(withRequestedUri(elsewhere, { method: 'tools/call' }), elsewhere);
  });
});
