// The reference's attention (bench/reference/mamba_ref.py) against textbook forms, in float64,
// before it judges the engine: bench/reference/attention_check.py.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { repoRoot } from '../../helpers.js';
import { referencePython } from './python.js';

test("the reference's attention is explicit causal softmax attention, its rope the rotation matrices, its GQA repeated KV heads", (t) => {
  const dir = join(repoRoot, 'bench', 'reference');
  const run = spawnSync(referencePython(), [join(dir, 'attention_check.py')], { encoding: 'utf8', cwd: dir });
  const checks = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { check: string; relative_error: number; passed: boolean });
  for (const c of checks) t.diagnostic(`${c.check}: ${c.relative_error.toExponential(2)}`);
  assert.equal(run.status, 0, `${run.stderr}\n${checks.filter((c) => !c.passed).map((c) => c.check).join('\n')}`);
  for (const kind of ['h4 kv4', 'h6 kv2', 'h4 kv1', 'rope 10000', 'rope 500', 'l1 ', 'gqa 8/2 = repeated kv, rope True', 'gradcheck']) {
    assert.ok(checks.some((c) => c.check.includes(kind) && c.passed), `a passing check covers '${kind}'`);
  }
});
