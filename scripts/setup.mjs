#!/usr/bin/env node
// Runs after `npm install`: builds everything the two quick-start commands need.
// Each step prints what it does; a failing step stops the install with its output.
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

const STEPS = [
  ['native engine (C++, cmake-js)', 'npm', ['run', 'build:native', '--workspace', 'kernel']],
  ['@mambalab/contract (what the kernel and the JupyterLab extension share)', 'npm', ['run', 'build', '--workspace', 'contract']],
  ['TypeScript API and CLI', 'npm', ['run', 'build:ts', '--workspace', 'kernel']],
  ['Jupyter environment (.venv with JupyterLab, the Mamba Lab kernel)', process.execPath, ['scripts/setup-python.mjs']],
  ['JupyterLab extension (prebuilt, rspack)', 'npm', ['run', 'build', '--workspace', 'labextension']],
  ['link the JupyterLab extension into .venv', 'node', ['labextension/scripts/link.mjs']],
];

for (const [what, command, args] of STEPS) {
  console.log(`\n[mambalab setup] ${what}`);
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`[mambalab setup] failed: ${what} (exit ${result.status}); fix the error above and run npm install again`);
    process.exit(1);
  }
  console.log(`[mambalab setup] ${what}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
