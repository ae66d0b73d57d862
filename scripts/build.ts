// `npm run build` (and `prepack`): compiles src/ to dist/ (JavaScript + declaration files), so an
// installed package runs without TypeScript. dist/ is emptied first: a deleted source file must not
// live on as a stale module in the tarball.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
// The admin page's HTML, CSS and script are files, not modules: copied beside the compiled handler.
cpSync(join(root, 'src/proxy/admin-ui'), join(root, 'dist/proxy/admin-ui'), { recursive: true });
