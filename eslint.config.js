// Lint rules, including the import direction of docs/architecture.md §5 (core <- config /
// observability / security / session <- routing / transport <- proxy <- cli).
import stylistic from '@stylistic/eslint-plugin';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const layer = (dir, forbidden) => ({
  files: [`src/${dir}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...forbidden.map((f) => ({ group: [`**/${f}/*`, `../${f}/*`], message: `src/${dir} must not import src/${f} (see docs/architecture.md §5)` })),
          // The composition root and the library entry sit above every folder.
          { group: ['../app.ts', '../index.ts'], message: `src/${dir} must not import the composition root or the library entry (see docs/architecture.md §5)` },
        ],
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'results/**', 'scratch/**', 'dist/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Source lines fit 120 columns (prettier, .prettierrc.json, wraps code; comments are wrapped by
    // hand; a long message string or URL may run on). No import cycles between modules.
    files: ['src/**/*.ts'],
    plugins: { '@stylistic': stylistic, 'import-x': importX },
    settings: { 'import-x/extensions': ['.ts'], 'import-x/resolver': { node: { extensions: ['.ts'] } } },
    rules: {
      '@stylistic/max-len': ['error', { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  layer('core', ['config', 'observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('config', ['observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('observability', ['config', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('security', ['config', 'observability', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('session', ['config', 'observability', 'security', 'routing', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('routing', ['session', 'transport', 'proxy', 'cli', 'demo', 'broker']),
  layer('transport', ['session', 'routing', 'proxy', 'cli', 'demo', 'broker']),
  layer('proxy', ['cli', 'demo', 'broker']),
  layer('broker', ['proxy', 'cli', 'demo', 'doctor', 'probe', 'generate']),
  layer('demo', ['config', 'observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'doctor', 'probe', 'generate', 'broker']),
  // The doctor is a client of the wire: it shares vocabulary (core) and nothing of the gateway.
  layer('doctor', ['config', 'observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'probe', 'broker']),
  layer('probe', ['config', 'observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'doctor', 'generate', 'broker']),
  layer('generate', ['observability', 'security', 'session', 'routing', 'transport', 'proxy', 'cli', 'demo', 'doctor', 'probe', 'broker']),
  {
    // The broker speaks to the SDKs through their own types: no `as never` to silence them
    // (test/unit/broker/import-graph.test.ts checks it too, with the import circles type imports make).
    files: ['src/broker/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', { selector: 'TSAsExpression > TSNeverKeyword', message: 'no `as never` in src/broker: use the SDK\'s types (issue 31)' }],
    },
  },
  {
    files: ['src/index.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['./cli/*'], message: 'the library entry must not import src/cli (see docs/architecture.md §5)' }] }] },
  },
);
