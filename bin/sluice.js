#!/usr/bin/env -S node --max-semi-space-size=2
// Launcher: Sluice is written in TypeScript that Node 24 runs directly (type stripping).
// When this file is started by an older Node (say the system's Node 20 through a global
// shim), hand over to the Node 24 that the project pins as a dev dependency.
// --max-semi-space-size=2 (MiB): a burst of new long-lived SSE streams otherwise grows V8's young
// generation to its 16 MiB default per semi-space and keeps it, which doubled the resident
// memory per 1,000 idle streams in bench/ at no measurable CPU saving (see bench/README.md).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src', 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);
const V8_FLAGS = ['--max-semi-space-size=2'];

if (major >= 24) {
  await import(entry);
} else {
  const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`sluice needs Node >= 24 (this is ${process.version}); run "npm ci" to install the pinned one.\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [...V8_FLAGS, entry, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
