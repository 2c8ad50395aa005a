import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { repoRoot } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const mambalab = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot });

test('bench scan times the CUDA scan on a GPU, and says why not elsewhere', (t) => {
  const run = mambalab(['bench', 'scan', '--device', 'cuda', '--json', '--len', '256', '--iters', '5', '--warmup', '1', '--segments', '2']);
  if (run.status === 0) {
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    for (const key of ['name', 'gpu', 'date', 'fwd_ms', 'fwd_bwd_ms']) assert.ok(key in result, `${key} in ${run.stdout}`);
    assert.equal(result.parts, 2, 'the --segments flag reaches the scan');
    return;
  }
  t.diagnostic(`no GPU run here: ${run.stderr.trim()}`);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /bench scan: (no GPU|.*no CUDA backend)/);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

test('bench scan refuses the CPU by name', () => {
  const run = mambalab(['bench', 'scan', '--device', 'cpu']);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--device cpu: the scan bench times the CUDA kernels/);
});
