// The doctor's report: a fix for every check on every platform, catalogue order, and the three
// renderings (terminal, Markdown, JSON).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIXES, PLATFORMS } from '../../../src/doctor/fixes.ts';
import { CHECKS, failed, ordered, renderJson, renderMarkdown, renderTerminal, result, type CheckId, type Report } from '../../../src/doctor/report.ts';

const IDS = Object.keys(CHECKS) as CheckId[];

function report(): Report {
  return {
    target: 'https://mcp.example.com/mcp',
    probeInstances: ['a', 'b'],
    quick: true,
    durationMs: 12_345,
    checks: ordered([result('sse-unbuffered', 'fail', 'events were held back | 2 s'), result('cors-preflight', 'warn', 'no CORS'), result('affinity', 'pass', 'fine')]),
  };
}

describe('doctor report', () => {
  it('has the stable check ids the issue names, and a cause and fix per platform for each', () => {
    for (const id of ['sse-unbuffered', 'sse-compression', 'idle-survival', 'session-id-roundtrip', 'protocol-version-forwarded', 'authorization-forwarded', 'last-event-id-forwarded', 'mcp-param-forwarded', 'cors-preflight', 'cors-expose-session-id', 'unknown-session-404', 'notification-202', 'no-redirect', 'affinity', 'resume', 'body-limit']) {
      assert.ok(IDS.includes(id as CheckId), id);
    }
    for (const id of IDS) {
      assert.ok(FIXES[id].cause.length > 20, id);
      for (const p of PLATFORMS) assert.ok(FIXES[id][p.key].length > 10, `${id} ${p.key}`);
    }
  });

  it('puts results in catalogue order and reports a check that did not run as skipped', () => {
    const r = report();
    assert.deepEqual(r.checks.map((c) => c.id), IDS);
    assert.equal(r.checks.find((c) => c.id === 'resume')!.status, 'skip');
    assert.equal(r.checks.find((c) => c.id === 'affinity')!.fix, null);
    assert.ok(r.checks.find((c) => c.id === 'cors-preflight')!.fix, 'warnings carry the fix too');
    assert.equal(failed(r), true);
    assert.equal(failed({ ...r, checks: r.checks.filter((c) => c.status !== 'fail') }), false);
  });

  it('renders a terminal table with the fixes under failures and warnings only', () => {
    const text = renderTerminal(report(), false);
    assert.match(text, /^sluice doctor: https:\/\/mcp\.example\.com\/mcp — sluice probe a, b, quick run/);
    assert.match(text, /\n {2}FAIL {2}sse-unbuffered +events were held back \| 2 s\n/);
    assert.match(text, /\n +nginx: `proxy_http_version 1\.1;/);
    assert.match(text, /\n +AWS ALB: /);
    assert.equal(text.match(/cause: /g)?.length, 2);
    assert.match(text, /21 checks: 1 passed, 1 failed, 1 warnings, 18 skipped \(12\.3 s\)/);
    assert.doesNotMatch(text, /\x1b\[/);
    assert.match(renderTerminal(report(), true), /\x1b\[31mFAIL\x1b\[0m/);
  });

  it('renders Markdown with escaped cells and a fix section, and JSON with the documented shape', () => {
    const md = renderMarkdown(report());
    assert.match(md, /\| FAIL \| `sse-unbuffered` \| events were held back \\\| 2 s \|/);
    assert.match(md, /## How to fix\n\n### `sse-unbuffered` \(FAIL\)/);
    assert.match(md, /- \*\*Cloudflare\*\*: /);
    const json = JSON.parse(renderJson(report())) as { target: string; checks: { id: string; status: string; detail: string; fix: Record<string, string> | null }[] };
    assert.equal(json.target, 'https://mcp.example.com/mcp');
    assert.equal(json.checks.length, IDS.length);
    const c = json.checks.find((x) => x.id === 'sse-unbuffered')!;
    assert.deepEqual(Object.keys(c).sort(), ['detail', 'fix', 'id', 'status', 'title']);
    assert.deepEqual(Object.keys(c.fix!).sort(), ['aws-alb', 'caddy', 'cause', 'cloudflare', 'haproxy', 'nginx', 'traefik']);
  });
});
