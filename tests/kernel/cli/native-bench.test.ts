import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { checkCudaDevice, runNativeBench } from '../../../kernel/src/cli/native-bench.js';
import { scratchDir } from '../../helpers.js';

/** A stand-in for a bench program: a shell script. */
function program(body: string): string {
  const path = join(scratchDir(), 'bench-program');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('a native bench: every JSON line it prints is a result, and its arguments are passed on', () => {
  const logged: string[] = [];
  const echo = program('echo "{\\"len\\": $2}"; echo; echo "{\\"args\\": \\"$*\\"}"');
  assert.deepEqual(runNativeBench('demo', echo, ['--len', '512'], (l) => logged.push(l)), [{ len: 512 }, { args: '--len 512' }]);
  assert.deepEqual(logged, [`bench demo: ${echo} --len 512`]);
});

test('a native bench without a GPU, failing or not built is a MambalabError that says which', () => {
  const quiet = () => {};
  assert.throws(() => runNativeBench('demo', program('echo "no CUDA device: driver not loaded" >&2'), [], quiet), {
    name: 'MambalabError',
    message: 'bench demo: no GPU (no CUDA device: driver not loaded)',
  });
  assert.throws(() => runNativeBench('demo', program('true'), [], quiet), { message: 'bench demo: no GPU (the program found none)' });
  assert.throws(() => runNativeBench('demo', program('echo "bad --len" >&2; exit 3'), [], quiet), { name: 'MambalabError', message: 'bench demo failed (exit 3): bad --len' });
  const missing = join(scratchDir(), 'mambalab_bench_demo');
  assert.throws(() => runNativeBench('demo', missing, [], quiet), { name: 'MambalabError', message: `bench demo: ${missing} is missing: this build has no CUDA backend (no CUDA compiler was found at npm install)` });
});

test('native benches run on CUDA (or auto) only', () => {
  assert.doesNotThrow(() => checkCudaDevice('demo', 'cuda'));
  assert.doesNotThrow(() => checkCudaDevice('demo', 'auto'));
  assert.throws(() => checkCudaDevice('demo', 'cpu'), { message: 'bench demo: --device cpu: the demo bench times the CUDA kernels; use --device cuda' });
});
