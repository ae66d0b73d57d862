// The one cache of what an upstream is (era-cache.ts): one look shared by concurrent askers,
// remembered once found, forgotten when it fails so the next request asks again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EraCache } from '../../../src/broker/era-cache.ts';
import type { Discovery } from '../../../src/broker/upstream-link.ts';

const legacy = { era: 'legacy', serverInfo: { name: 's', version: '1' }, capabilities: {} } as unknown as Discovery;

describe('EraCache', () => {
  it('shares one look, remembers it, and forgets a failed one', async () => {
    const cache = new EraCache();
    let looks = 0;
    const look = async (): Promise<Discovery> => {
      looks++;
      await new Promise((r) => setTimeout(r, 5));
      return legacy;
    };
    const [a, b] = await Promise.all([cache.find('r1', look), cache.find('r1', look)]);
    assert.equal(a, b);
    assert.equal(looks, 1);
    assert.equal(cache.get('r1'), legacy);
    await cache.find('r1', look);
    assert.equal(looks, 1, 'remembered');
    let failed = '';
    await assert.rejects(cache.find('r2', async () => Promise.reject(new Error('down')), { failed: (e) => (failed = e.message) }));
    assert.equal(failed, 'down');
    assert.equal(cache.get('r2'), undefined);
    assert.equal(await cache.find('r2', look), legacy, 'asked again after a failure');
  });
});
