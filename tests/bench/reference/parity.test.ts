// Our engine against the independent PyTorch implementation (bench/reference/mamba_ref.py):
// same weights through safetensors, same batch → the losses, the routing and every gradient.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { toBatch } from '../../../kernel/src/data/batch.js';
import type { ModelConfig } from '../../../kernel/src/models/config.js';
import { createModel } from '../../../kernel/src/models/model.js';
import type { DType } from '../../../kernel/src/native.js';
import { readSafetensors } from '../../../kernel/src/models/safetensors.js';
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

// Small models of every family; vocabularies padded from 1001 to 1008; sequences over one
// conv window; capacities that drop tokens where the family has them.
const CASES: { name: string; config: Partial<ModelConfig>; dtypes: DType[]; drops?: boolean }[] = [
  { name: 'mamba', config: { pattern: 'M*2' }, dtypes: ['float32', 'float64'] },
  {
    name: 'moe-mamba (switch, capacity 1.0, GELU experts)',
    config: { model: 'moe-mamba', pattern: 'ME', numExperts: 4, expertHidden: 20, capacityFactor: 1.0, auxLossWeight: 0.01 },
    dtypes: ['float32', 'float64'],
    drops: true,
  },
  {
    name: 'blackmamba (Sinkhorn, SwiGLU experts, router bias)',
    config: { model: 'blackmamba', pattern: 'ME', numExperts: 4, expertHidden: 20, router: 'sinkhorn', expertKind: 'swiglu', routerBias: true, capacityFactor: 'dropless', auxLossWeight: 0 },
    dtypes: ['float64'],
  },
  {
    name: 'parallel MoE-Mamba with an MLP and top-2 routing',
    config: { model: 'parallel-moe-mamba', pattern: '(M|E) F', numExperts: 3, topK: 2, expertHidden: 12, dFF: 16, capacityFactor: 1.25 },
    dtypes: ['float64'],
  },
];

for (const { name, config, dtypes, drops } of CASES) {
  for (const dtype of dtypes) {
    test(`${name}, ${dtype}: loss, expert counts and every gradient match the PyTorch reference`, async (t) => {
      const dir = scratchDir();
      const model = createModel({ vocabSize: 1001, dModel: 24, seed: 11, dtype, ...config });
      const tokens = randomTokens(3, 17, 1001, 5);
      const batch = toBatch(tokens);
      const ours = await model.engine.lossAndGradients(batch.tokens, batch.batchSize, batch.seqLen + 1);
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
      assert.ok(Math.abs(ours.loss - refLoss) / refLoss < 1e-4, `loss ${ours.loss} vs reference ${refLoss}`);
      const refAux = Number(reference.metadata.aux_loss);
      assert.ok(Math.abs(ours.auxLoss - refAux) <= 1e-4 * Math.max(refAux, 1e-12), `aux loss ${ours.auxLoss} vs ${refAux}`);
      assert.deepEqual(ours.experts.map((l) => l.counts), JSON.parse(reference.metadata.experts!), 'tokens per expert');
      if (drops) assert.ok(ours.experts.some((l) => l.dropped > 0), 'the capacity case drops tokens');

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
      t.diagnostic(`loss ${ours.loss} vs ${refLoss}; worst gradient ${worst.name} ${worst.err.toExponential(2)} (‖ours − ref‖ / ‖ref‖)`);
    });
  }
}
