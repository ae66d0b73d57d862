// The payload redactor: field names, JSON paths with wildcards, hash mode, secret detectors,
// truncation — and ordinary values left readable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectSecrets, lineRedactor, Redactor, type RedactionRules } from '../../../src/observability/redact.ts';

const rules = (r: Partial<RedactionRules> = {}): RedactionRules => ({ fields: [], paths: [], hashFields: [], hashPaths: [], detectors: true, maxString: 256, maxArray: 20, ...r });
const KEY = Buffer.from('k'.repeat(32));

describe('redactor', () => {
  it('replaces default and configured field names in any casing, anywhere, and keeps the rest', () => {
    const r = new Redactor(rules({ fields: ['Diagnosis'] }), KEY);
    const out = r.redact({ params: { arguments: { Password: 'p', API_KEY: 'k', 'X-Api-Key': 'x', nested: [{ access_token: 't', diagnosis: 'd', city: 'Lyon' }], count: 3, ok: true } } });
    assert.deepEqual(out, { params: { arguments: { Password: '[REDACTED]', API_KEY: '[REDACTED]', 'X-Api-Key': '[REDACTED]', nested: [{ access_token: '[REDACTED]', diagnosis: '[REDACTED]', city: 'Lyon' }], count: 3, ok: true } } });
  });

  it('matches JSON paths with [*], * and **', () => {
    const r = new Redactor(rules({ paths: ['params.arguments.ssn', 'result.content[*].text', '**.card_number', '$.params.*.pin'] }), KEY);
    const out = r.redact({ params: { arguments: { ssn: '1', name: 'a' }, other: { pin: '2' } }, result: { content: [{ type: 'text', text: 'secret' }, { type: 'text', text: 'also' }] }, deep: { a: { b: { card_number: '4111' } } }, ssn: 'top-level stays' }) as Record<string, unknown>;
    assert.deepEqual(out, { params: { arguments: { ssn: '[REDACTED]', name: 'a' }, other: { pin: '[REDACTED]' } }, result: { content: [{ type: 'text', text: '[REDACTED]' }, { type: 'text', text: '[REDACTED]' }] }, deep: { a: { b: { card_number: '[REDACTED]' } } }, ssn: 'top-level stays' });
  });

  it('hashes equal values alike under one key and differently under another', () => {
    const a = new Redactor(rules({ hashFields: ['customer'], hashPaths: ['params.user.id'] }), KEY);
    const b = new Redactor(rules({ hashFields: ['customer'] }), Buffer.from('other key'));
    const one = a.redact({ customer: 'alice', params: { user: { id: 7 } } }) as { customer: string; params: { user: { id: string } } };
    const two = a.redact({ customer: 'alice' }) as { customer: string };
    assert.match(one.customer, /^\[HASH:[0-9a-f]{16}\]$/);
    assert.equal(one.customer, two.customer);
    assert.notEqual((a.redact({ customer: 'bob' }) as { customer: string }).customer, one.customer);
    assert.notEqual((b.redact({ customer: 'alice' }) as { customer: string }).customer, one.customer);
    assert.match(one.params.user.id, /^\[HASH:/);
  });

  it('detects secrets in strings and leaves ordinary text alone', () => {
    const cases: [string, string][] = [
      ['Authorization: Bearer abc.def-ghi_jkl', 'Authorization: Bearer [REDACTED:credential]'],
      ['basic Basic dXNlcjpwYXNzd29yZA==', 'basic Basic [REDACTED:credential]'],
      ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature', 'jwt [REDACTED:jwt]'],
      ['postgres://app:hunter2@db/x', 'postgres://app:[REDACTED:url-password]@db/x'],
      ['AKIAABCDEFGHIJKLMNOP', '[REDACTED:api-key]'],
      ['ghp_abcdefghijklmnopqrstuvwxyz0123456789', '[REDACTED:api-key]'],
      ['xoxb-123456789012-abcdef', '[REDACTED:api-key]'],
      ['sk_live_abcdefghijklmnop', '[REDACTED:api-key]'],
      ['sk-proj-abcdefghijklmnopqrstuvwx', '[REDACTED:api-key]'],
      ['AIzaSyA-abcdefghijklmnopqrstuvwxyz01234', '[REDACTED:api-key]'],
      ['password=hunter2&user=bob', 'password=[REDACTED:assignment]&user=bob'],
      ['-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- done', '[REDACTED:private-key] done'],
      ['The weather in Lyon is 21°C; see https://example.com/a?b=c', 'The weather in Lyon is 21°C; see https://example.com/a?b=c'],
      // Issue 35: an AWS secret access key after its name; JSON members whose name says secret.
      ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key = [REDACTED:aws-secret]'],
      ['AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rest', 'AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret] rest'],
      ['{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', '{"SecretAccessKey": "[REDACTED:json-secret]"}'],
      ['{"client_id":"app","client_secret":"s3cr3t value \\" quoted"}', '{"client_id":"app","client_secret":"[REDACTED:json-secret]"}'],
      ['config {"api_key": "k-123", "region": "eu"}', 'config {"api_key": "[REDACTED:json-secret]", "region": "eu"}'],
    ];
    for (const [input, want] of cases) assert.equal(detectSecrets(input), want, input);
    assert.equal(new Redactor(rules({ detectors: false }), KEY).redact('Bearer abcdefghijkl'), 'Bearer abcdefghijkl');
  });

  it('a private key written over several lines (a stdio server\'s stderr) is hidden line by line, whole', () => {
    const redact = lineRedactor();
    const lines = ['starting', '-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'BKcwggSjAgEAAoIBAQC7', '-----END PRIVATE KEY-----', 'ready'];
    assert.deepEqual(lines.map(redact), ['starting', '[REDACTED:private-key]', '[REDACTED:private-key]', '[REDACTED:private-key]', '[REDACTED:private-key]', 'ready']);
  });

  it('cuts long strings and arrays, noting the original size, and stops at depth 32', () => {
    const r = new Redactor(rules({ maxString: 5, maxArray: 2 }), KEY);
    assert.equal(r.redact('abcdefghij'), 'abcde…[10 chars]');
    assert.deepEqual(r.redact([1, 2, 3, 4]), [1, 2, '…[4 items]']);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    assert.match(JSON.stringify(r.redact(deep)), /nested deeper than 32 levels/);
    const input = { password: 'x', list: [1, 2, 3] };
    r.redact(input);
    assert.deepEqual(input, { password: 'x', list: [1, 2, 3] }, 'the input is not changed');
  });
});
