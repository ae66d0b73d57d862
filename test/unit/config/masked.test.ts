// What the admin page and the start banner show of the config (masked.ts): a stdio server's
// arguments with the values of secret flags and credential-shaped arguments masked (issue 35).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MASK, maskedArgs, maskedConfig } from '../../../src/config/masked.ts';

describe('masked config', () => {
  it("a stdio server's arguments: secret flags' values and credentials masked, the rest shown", () => {
    assert.deepEqual(
      maskedArgs(['-y', '@modelcontextprotocol/server-github', '--api-key', 'k-123', '--token=abc', '--port', '3000']),
      ['-y', '@modelcontextprotocol/server-github', '--api-key', MASK, `--token=${MASK}`, '--port', '3000'],
    );
    assert.deepEqual(maskedArgs(['ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'https://u:p@host/x', '/srv']), [
      MASK,
      `https://${MASK}@host/x`,
      '/srv',
    ]);
    assert.deepEqual(maskedArgs(['--client-secret']), ['--client-secret'], 'a trailing flag with no value');
  });

  it('the admin view of a config masks them inside routes, and every env value', () => {
    const shown = maskedConfig({
      routes: [{ path: '/gh', upstream: { stdio: { command: 'npx', args: ['srv', '--password', 'hunter2'], env: { GH: 'x' } } } }],
    });
    const text = JSON.stringify(shown);
    assert.ok(!text.includes('hunter2') && !text.includes('"x"'), text);
    assert.ok(text.includes('--password') && text.includes('srv'), text);
  });
});
