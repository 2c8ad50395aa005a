// bench/reference/attention_reference.py: PyTorch SDPA timed at bench attention's shapes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { repoRoot } from '../../helpers.js';
import { referencePython } from './python.js';

test('attention_reference times SDPA per length with the keys of ours on a GPU, and says plainly when there is none', (t) => {
  const script = join(repoRoot, 'bench', 'reference', 'attention_reference.py');
  const run = spawnSync(referencePython(), [script, '--len', '128,256', '--heads', '4', '--kv-heads', '2', '--warmup', '1', '--iters', '2'], { encoding: 'utf8' });
  if (run.status === 0) {
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((l) => l.shape), [128, 256].map((len) => ({ batch: 8, heads: 4, kv_heads: 2, head_dim: 64, len })));
    for (const l of lines) {
      assert.equal(l.impl, 'pytorch_sdpa');
      assert.ok(l.fwd_ms > 0 && l.fwd_bwd_ms > l.fwd_ms, JSON.stringify(l));
      const expected = (4 * 8 * 4 * l.shape.len ** 2 * 64) / 2 / l.fwd_ms / 1e9; // the printed figures are rounded
      assert.ok(Math.abs(l.fwd_tflops - expected) <= 0.02 * expected + 0.01, 'causal forward FLOPs: half of 4·b·h·L²·d');
    }
    return;
  }
  t.diagnostic(run.stderr.trim());
  assert.equal(run.status, 1);
  assert.equal(run.stderr, "attention_reference: no CUDA device (this times PyTorch's GPU kernels)\n");
});
