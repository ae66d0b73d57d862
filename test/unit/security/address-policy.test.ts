// The address policy and the full URL judgement over the SSRF case table (injected DNS only).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { categorize, embeddedIPv4 } from '../../../src/security/address-policy.ts';
import { checkUpstream } from '../../../src/transport/guarded-connect.ts';
import { policyOf, SSRF_CASES } from '../../fixtures/ssrf-cases.ts';
import ipaddr from 'ipaddr.js';

describe('SSRF case table through the URL judgement', () => {
  it(`has at least 80 cases (${SSRF_CASES.length})`, () => assert.ok(SSRF_CASES.length >= 80));
  for (const c of SSRF_CASES) {
    it(`${JSON.stringify(c.url)}${c.answers ? ` -> ${JSON.stringify(c.answers)}` : ''} ${c.policy ?? 'strict'}: ${c.expect}`, async () => {
      const asked: string[] = [];
      const resolver = async (host: string) => {
        asked.push(host);
        if (c.answers === 'throw') throw new Error('SERVFAIL');
        return c.answers ?? [];
      };
      const v = await checkUpstream(c.url.replaceAll('PORT', '8443'), policyOf(c), resolver);
      assert.equal(v.ok ? 'allowed' : v.rule, c.expect);
      for (const h of asked) assert.equal(h, h.toLowerCase().replace(/\.$/, ''), 'the resolver sees the canonical name');
    });
  }
});

describe('address categories', () => {
  it('unwraps every IPv6 form that carries an IPv4 address, and only those', () => {
    const inner = (a: string) => embeddedIPv4(ipaddr.parse(a) as ipaddr.IPv6)?.toString();
    assert.equal(inner('::ffff:7f00:1'), '127.0.0.1');
    assert.equal(inner('::7f00:1'), '127.0.0.1');
    assert.equal(inner('::ffff:0:7f00:1'), '127.0.0.1');
    assert.equal(inner('64:ff9b::7f00:1'), '127.0.0.1');
    assert.equal(inner('2002:7f00:1::'), '127.0.0.1');
    assert.equal(inner('::1'), undefined);
    assert.equal(inner('::'), undefined);
    assert.equal(inner('2606:4700::1'), undefined);
  });
  it('treats everything outside global unicast as reserved and ordinary public addresses as public', () => {
    assert.equal(categorize('8000::1'), 'reserved');
    assert.equal(categorize('1.1.1.1'), undefined);
    assert.equal(categorize('2a00:1450:4001::1'), undefined);
    assert.equal(categorize('not-an-ip'), 'malformed-url');
    assert.equal(categorize('fe80::1%eth0'), 'malformed-url');
  });
});
