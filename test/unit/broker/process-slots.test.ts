// The one count of a stdio server's processes (process-slots.ts): the bound, a caller's share,
// anonymous callers counted in the total only, slots given back once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../../../src/core/errors.ts';
import { perCallerShare, ProcessSlots } from '../../../src/broker/process-slots.ts';

const refused = (f: () => unknown, what: RegExp): void =>
  assert.throws(f, (e: unknown) => e instanceof SluiceError && e.code === 'SLUICE_ERR_BROKER_FULL' && what.test(e.message));

describe('ProcessSlots', () => {
  it('holds the bound, with Retry-After, and a slot given back twice counts once', () => {
    const slots = new ProcessSlots(2, 2, 'route /mcp');
    const a = slots.take(undefined);
    slots.take(undefined);
    refused(() => slots.take(undefined), /route \/mcp: 2 processes running or stopping \(maxProcesses\)/);
    a.release();
    a.release();
    assert.equal(slots.running, 1);
    slots.take(undefined);
    refused(() => slots.take(undefined), /maxProcesses/);
  });

  it("one caller holds at most its share; another caller and anonymous callers still get slots", () => {
    const slots = new ProcessSlots(4, 2, 'route /mcp');
    const mine = [slots.take('p:alice'), slots.take('p:alice')];
    refused(() => slots.take('p:alice'), /its share \(maxProcessesPerCaller\)/);
    slots.take('p:bob');
    slots.take('anon:1');
    refused(() => slots.take('anon:2'), /maxProcesses/);
    mine[0]!.release();
    assert.equal(slots.running, 3);
    slots.take('p:alice');
  });

  it('the share defaults to half the bound, rounded up, never above it', () => {
    const cfg = (maxProcesses: number, maxProcessesPerCaller?: number) =>
      ({ maxProcesses, ...(maxProcessesPerCaller ? { maxProcessesPerCaller } : {}) }) as never;
    assert.equal(perCallerShare(cfg(50)), 25);
    assert.equal(perCallerShare(cfg(5)), 3);
    assert.equal(perCallerShare(cfg(1)), 1);
    assert.equal(perCallerShare(cfg(5, 5)), 5);
    const slots = new ProcessSlots(2, 9, 'x');
    slots.take('p:a');
    slots.take('p:a');
    refused(() => slots.take('p:a'), /maxProcesses/);
  });
});
