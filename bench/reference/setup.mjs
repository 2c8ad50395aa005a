#!/usr/bin/env node
// Creates bench/reference/.venv with PyTorch (CPU is enough), safetensors and numpy, for the
// reference implementation. Idempotent; prints the python path on the last line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const venv = join(import.meta.dirname, '.venv');
const python = join(venv, 'bin', 'python');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with exit ${r.status}`);
}

const healthy = existsSync(python) && spawnSync(python, ['-c', 'import torch, safetensors, numpy']).status === 0;
if (!healthy) {
  run('python3', ['-m', 'venv', venv]);
  // --retries 0 --timeout 5: where only a local wheel store is reachable, pip falls through
  // to it at once instead of retrying PyPI; with PyPI reachable they change nothing.
  run(python, ['-m', 'pip', 'install', '-q', '--retries', '0', '--timeout', '5', 'torch', 'safetensors', 'numpy']);
}
console.log(python);
