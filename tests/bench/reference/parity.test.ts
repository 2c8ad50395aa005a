// Our engine against the independent PyTorch implementation (bench/reference/mamba_ref.py):
// same weights through safetensors, same batch → the loss and every parameter's gradient.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { createModel } from '../../../kernel/src/models/model.js';
import { readSafetensors } from '../../../kernel/src/train/safetensors.js';
import { randomTokens, repoRoot, scratchDir } from '../../helpers.js';
import { referencePython } from './python.js';

function relativeError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < ref.length; i++) {
    diff += (ours[i]! - ref[i]!) ** 2;
    norm += ref[i]! ** 2;
  }
  return Math.sqrt(diff / Math.max(norm, 1e-300));
}

for (const dtype of ['float32', 'float64'] as const) {
  test(`${dtype} loss and every gradient match the PyTorch reference within 1e-4 relative`, async (t) => {
    const dir = scratchDir();
    // Two layers, a vocabulary padded from 1001 to 1008, sequences over one conv window.
    const model = createModel({ vocabSize: 1001, dModel: 24, pattern: 'M*2', seed: 11, dtype });
    const tokens = randomTokens(3, 17, 1001, 5);
    const loss = await model.lossAndGradients(tokens);
    model.save(dir);
    writeFileSync(join(dir, 'batch.json'), JSON.stringify({ tokens }));

    const out = join(dir, 'reference.safetensors');
    const run = spawnSync(
      referencePython(),
      [join(repoRoot, 'bench', 'reference', 'mamba_ref.py'), '--checkpoint', dir, '--batch', join(dir, 'batch.json'), '--out', out, '--dtype', 'float64'],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    const reference = readSafetensors(out);
    const refLoss = Number(reference.metadata.loss);
    assert.ok(Math.abs(loss - refLoss) / refLoss < 1e-4, `loss ${loss} vs reference ${refLoss}`);

    const bound = dtype === 'float64' ? 1e-10 : 1e-4;
    let worst = { name: '', err: 0 };
    for (const p of model.parameters()) {
      const ref = reference.tensors.get(p.name);
      assert.ok(ref, `the reference has no gradient for ${p.name}`);
      const err = relativeError(model.gradient(p.name), ref.data);
      assert.ok(err < bound, `${p.name}: relative error ${err} ≥ ${bound}`);
      if (err > worst.err) worst = { name: p.name, err };
    }
    assert.equal(model.parameters().length, reference.tensors.size);
    t.diagnostic(`loss ${loss} vs ${refLoss}; worst gradient ${worst.name} ${worst.err.toExponential(2)} (‖ours − ref‖ / ‖ref‖)`);
  });
}
