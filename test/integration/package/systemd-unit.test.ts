// examples/systemd/sluice.service: `systemd-analyze verify` clean, hardened (exposure level from
// `systemd-analyze security --offline`), reload and stop wired to Sluice's SIGHUP and SIGTERM.
// verify checks that ExecStart's program exists, so the test points it at this checkout's launcher
// in a copy; nothing else of the unit changes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../../src/config/load.ts';
import { parseDuration } from '../../../src/config/units.ts';
import { runProgram } from '../../helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UNIT = readFileSync(join(ROOT, 'examples', 'systemd', 'sluice.service'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'sluice-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function analyze(args: string[]): Promise<{ code: number; out: string }> {
  const r = await runProgram('systemd-analyze', args, { env: { ...process.env, SYSTEMD_COLORS: '0' } });
  return { code: r.code, out: r.stdout + r.stderr };
}

function directives(name: string): string[] {
  return [...UNIT.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
}

describe('the example systemd unit', () => {
  const copy = join(dir, 'sluice.service');
  writeFileSync(copy, UNIT.replace(/^ExecStart=\/usr\/local\/bin\/sluice /m, `ExecStart=${join(ROOT, 'bin', 'sluice.js')} `));

  it('passes systemd-analyze verify with no complaint', async () => {
    const r = await analyze(['verify', copy]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), '', r.out);
  });

  it('is hardened for a network proxy: no privileges, capabilities or writable system', async () => {
    for (const [k, v] of [['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['ProtectSystem', 'strict'], ['CapabilityBoundingSet', ''], ['DynamicUser', 'yes']] as const) {
      assert.deepEqual(directives(k), [v], `${k}=${v}`);
    }
    const r = await analyze(['security', '--offline=yes', copy]);
    const level = /Overall exposure level for \S+: ([\d.]+)/.exec(r.out);
    assert.ok(level, r.out);
    assert.ok(Number(level[1]) <= 2, `exposure ${level[1]} (0 best, 10 worst); systemd calls <= 2 "OK"`);
  });

  it('reloads with SIGHUP, stops with SIGTERM and waits longer than the drain', () => {
    assert.deepEqual(directives('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(directives('KillSignal'), ['SIGTERM']);
    assert.match(directives('ExecStart')[0]!, / serve --config \/etc\/sluice\/sluice\.yaml$/);
    const example = parseConfigText(readFileSync(join(ROOT, 'examples', 'sluice.yaml'), 'utf8'), 'examples/sluice.yaml', {});
    const stopMs = parseDuration(directives('TimeoutStopSec')[0]!) ?? 0;
    assert.ok(stopMs > example.shutdown.drain, `TimeoutStopSec ${stopMs} ms must exceed shutdown.drain ${example.shutdown.drain} ms`);
  });
});
