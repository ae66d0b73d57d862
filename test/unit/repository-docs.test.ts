// The architecture lives in the repository and is kept true: every folder of src/ is named in the
// README's layout paragraph and in docs/architecture.md's layout, every stage of the pipeline is in
// the architecture's stage table in its order, and no tracked file points outside the repository.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const srcFolders = readdirSync(join(ROOT, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

describe('docs/architecture.md and the README layout', () => {
  it('name every folder of src/', () => {
    const readme = read('README.md');
    const layout = readme.slice(readme.indexOf('## Layout'));
    const arch = read('docs/architecture.md');
    const tree = arch.slice(arch.indexOf('## 5. Layout'), arch.indexOf('## 6.'));
    for (const f of srcFolders) {
      assert.match(layout, new RegExp('`' + f + '`'), `README layout misses src/${f}`);
      assert.match(tree, new RegExp(`^  ${f}/ `, 'm'), `docs/architecture.md §5 misses src/${f}`);
    }
  });

  it('list the request and response stages in the order pipeline.ts runs them', () => {
    const pipeline = read('src/proxy/pipeline.ts');
    const list = (name: string): string[] => {
      const body = new RegExp(`\\b${name}: readonly \\w+\\[\\] = \\[([\\s\\S]*?)\\];`).exec(pipeline)![1]!;
      const names = body.replace(/forwardWith\(RESPONSE_STAGES\)/, 'forward').replace(/\.\.\.\w+\(|\)/g, '');
      return names.split(',').map((n) => n.trim()).filter(Boolean);
    };
    const arch = read('docs/architecture.md');
    const table = (from: string, to: string) => [...arch.slice(arch.indexOf(from), arch.indexOf(to, arch.indexOf(from))).matchAll(/^\| (\d+) \| `(\w+)` \|/gm)].map((m) => m[2]);
    assert.deepEqual(table('| # | Stage |', '| # | Response stage |'), list('STAGES'));
    assert.deepEqual(table('| # | Response stage |', 'Which headers cross'), list('RESPONSE_STAGES'));
  });

  it('no tracked file refers to a path outside the repository', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f && !f.endsWith('package-lock.json') && !/\.(png|tgz|gz)$/.test(f));
    const outside = /\.\.\/shared\b|\bshared\/(reference|DESIGN)|\bDESIGN\.md\b|\/work\//;
    const bad = files.filter((f) => outside.test(read(f)) && f !== 'test/unit/repository-docs.test.ts');
    assert.deepEqual(bad, []);
  });
});
