// scripts/setup-python.mjs (run by `npm install`): reuses a healthy .venv, keeps the kernel
// spec current, and the venv stays out of git.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ensureJupyter, root, venvBin } from '../support/jupyter.js';

const script = join(root, 'scripts', 'setup-python.mjs');

test('a healthy .venv is reused, and the kernel spec in it names this checkout', () => {
  ensureJupyter();
  const started = performance.now();
  const again = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  const seconds = (performance.now() - started) / 1000;
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /\[setup-python\] reusing \.venv \(JupyterLab 4\.\d+\.\d+\)/);
  assert.doesNotMatch(again.stdout, /installing/);
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);

  const spec = JSON.parse(readFileSync(join(root, '.venv', 'share', 'jupyter', 'kernels', 'mambalab', 'kernel.json'), 'utf8'));
  assert.equal(spec.display_name, 'Mamba Lab (TypeScript)');
  assert.equal(spec.argv[1], join(root, 'kernel', 'dist', 'cli', 'main.js'));
  // Node must not read the CommonJS scripts JupyterLab ships as ES modules (our package.json says "module").
  assert.equal(JSON.parse(readFileSync(join(root, '.venv', 'package.json'), 'utf8')).type, 'commonjs');
  assert.ok(existsSync(join(venvBin, 'jupyter-lab')) || existsSync(join(venvBin, 'jupyter-lab.exe')));
  assert.equal(spawnSync('git', ['check-ignore', '-q', '.venv'], { cwd: root }).status, 0, '.venv is git-ignored');
});

test('MAMBALAB_SKIP_JUPYTER=1 skips the Jupyter environment', () => {
  const skipped = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, MAMBALAB_SKIP_JUPYTER: '1' } });
  assert.equal(skipped.status, 0);
  assert.match(skipped.stdout, /MAMBALAB_SKIP_JUPYTER=1: skipping the Jupyter environment/);
});
