#!/usr/bin/env node
// Builds the prebuilt (federated) extension into labextension/prebuilt without Python:
// TypeScript to lib/ (after @mambalab/contract, which it imports), then @jupyter/builder (rspack, a few seconds) against JupyterLab 4.6.4's
// core package list from @jupyterlab/core-meta, so shared packages match the JupyterLab we pin.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const here = new URL('..', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const development = process.argv.includes('--development');

function run(what, command, args) {
  const result = spawnSync(command, args, { cwd: here, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`labextension build: ${what} failed (exit ${result.status})`);
    process.exit(result.status ?? 1);
  }
}

run('TypeScript', process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'tsconfig.json']);
const corePackageFile = join(dirname(require.resolve('@jupyterlab/core-meta/package.json')), 'core.package.json');
const builder = join(dirname(require.resolve('@jupyter/builder/package.json')), 'lib', 'build-labextension.js');
run('rspack bundle', process.execPath, [builder, '--core-package-file', corePackageFile, ...(development ? ['--development'] : []), here]);
