// The suite runs the benchmark once, in its smoke form: it must run against every target and
// produce the table and the JSON. Timings are not asserted (shared 2-core machines); completeness and zero failures are.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const TARGETS = ['direct', 'sluice', 'node-floor', 'nginx', 'haproxy'];
const KEYS = [
  'target',
  'rps',
  'p50_ms',
  'p99_ms',
  'cpu_s_per_10k',
  'rss_mb_per_1k_streams',
  'sse_lag_p99_ms',
  'upstream_closed_on_cancel',
];

describe('npm run bench -- --smoke (the quick form, shortest windows)', () => {
  it('measures direct, Sluice, its Node floor, nginx and HAProxy and writes the tables and latest.json', () => {
    const out = mkdtempSync(join(tmpdir(), 'sluice-bench-smoke-'));
    try {
      const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.ts'), '--smoke', '--streams', '500', '--out', out], {
        encoding: 'utf8',
        timeout: 360_000,
        env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` },
      });
      assert.equal(r.status, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
      const md = readFileSync(join(out, 'latest.md'), 'utf8');
      for (const t of TARGETS) assert.match(md, new RegExp(`^\\| ${t} \\|`, 'm'), `table row for ${t}`);
      assert.match(md, /\| Sluice goal \| measured \| met \|/);
      assert.match(md, /^\| proxy CPU s per 10k @2,000\/s \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+× \| [\d.]+× \|$/m);
      const json = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as { targets: Record<string, unknown>[] };
      assert.deepEqual(
        json.targets.map((t) => t['target']),
        TARGETS,
      );
      for (const t of json.targets) {
        for (const k of KEYS) assert.ok(k in t, `${String(t['target'])} has ${k}`);
        assert.ok(typeof t['rps'] === 'number' && t['rps'] > 0, `${String(t['target'])} measured a throughput`);
        // A shared 2-core VM drops the odd socket under wrk for every target alike (2 of 5 CI runs
        // saw ~10 of ~60,000): the bound is 0.1% of what was sent, the same for every target.
        const total = Number(t['total_requests']);
        assert.ok(total > 0, `${String(t['target'])} counted its requests`);
        assert.ok(
          Number(t['failed_requests']) <= Math.max(1, total * 0.001),
          `${String(t['target'])}: ${String(t['failed_requests'])} of ${total} requests failed`,
        );
        assert.ok(typeof t['sse_lag_p99_ms'] === 'number', `${String(t['target'])} measured SSE lag`);
        assert.match(String(t['streams_held']), /^[1-9]\d*\/\d+$/, `${String(t['target'])} held idle streams`);
      }
      const proxies = json.targets.filter((t) => t['target'] !== 'direct');
      for (const t of proxies)
        assert.ok(
          typeof t['cpu_s_per_10k'] === 'number' && typeof t['rss_mb_per_1k_streams'] === 'number',
          `${String(t['target'])} CPU and RSS read from /proc`,
        );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
