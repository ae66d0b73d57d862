#!/usr/bin/env -S node --max-semi-space-size=2
// Launcher. An installed package runs the compiled JavaScript in dist/ (Node >= 22.19, the floor
// undici sets). A git checkout runs the TypeScript in src/ directly (type stripping, Node >= 24);
// started there by an older Node (say the system's Node 20 through a global shim), it hands over
// to the Node 24 that the project pins as a dev dependency.
// --max-semi-space-size=2 (MiB): a burst of new long-lived SSE streams otherwise grows V8's young
// generation to its 16 MiB default per semi-space and keeps it, which doubled the resident
// memory per 1,000 idle streams in bench/ at no measurable CPU saving (see bench/README.md).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
const built = join(root, 'dist', 'cli', 'main.js');
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const V8_FLAGS = ['--max-semi-space-size=2'];

function refuse(message) {
  process.stderr.write(`sluice: ${message}\n`);
  process.exit(1);
}

if (existsSync(source)) {
  if (major >= 24) {
    await import(pathToFileURL(source).href);
  } else {
    const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
    if (!existsSync(pinned)) refuse(`a checkout runs on Node >= 24 (this is ${process.version}); run "npm ci" to install the pinned one`);
    const child = spawn(pinned, [...V8_FLAGS, source, ...process.argv.slice(2)], { stdio: 'inherit' });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  }
} else if (existsSync(built)) {
  if (major < 22 || (major === 22 && minor < 19)) refuse(`needs Node 22.19 or later (this is ${process.version})`);
  await import(pathToFileURL(built).href);
} else {
  refuse(`neither ${source} nor ${built} exists; in a checkout run "npm ci", in a package reinstall it`);
}
