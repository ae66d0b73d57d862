// The broker folder's imports form no circle, type imports included (import-x/no-cycle skips
// those), and it holds no `as never` (the SDK's own types instead; the lint rule says so too).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const DIR = new URL('../../../src/broker/', import.meta.url).pathname;
const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
const source = new Map(files.map((f) => [f, readFileSync(join(DIR, f), 'utf8')]));

/** Every `./x.ts` a broker file imports or re-exports, type-only ones included. */
function edges(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+'\.\/([\w-]+\.ts)'/g)) out.push(m[1] as string);
  return out;
}

describe('src/broker imports', () => {
  it('form no circle, type imports included', () => {
    const graph = new Map(files.map((f) => [f, edges(source.get(f) as string)]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const to of graph.get(f) ?? []) visit(to, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  it('hold no `as never`', () => {
    const found = files.filter((f) => /\bas never\b/.test(source.get(f) as string));
    assert.deepEqual(found, []);
  });
});
