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
import { preset } from '../../../kernel/src/models/presets.js';
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
// conv window (3 × 17 tokens unless `shape` says [batch, length]); capacities that drop tokens
// where the family has them. Attention: the presets' tiny configs, then multi-head,
// grouped-query and multi-query heads with and without rope, odd lengths, one token, one row.
const CASES: { name: string; config: Partial<ModelConfig>; dtypes: DType[]; drops?: boolean; shape?: [number, number] }[] = [
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
    name: "blackmamba as released (GeGLU experts and MLP, final LayerNorm with bias)",
    config: { model: 'blackmamba', pattern: 'ME F', numExperts: 4, expertHidden: 20, dFF: 12, router: 'sinkhorn', expertKind: 'geglu', mlpKind: 'geglu', routerBias: true, capacityFactor: 'dropless', auxLossWeight: 0, finalNorm: 'layernorm' },
    dtypes: ['float32', 'float64'],
  },
  {
    name: 'parallel MoE-Mamba with an MLP and top-2 routing',
    config: { model: 'parallel-moe-mamba', pattern: '(M|E) F', numExperts: 3, topK: 2, expertHidden: 12, dFF: 16, capacityFactor: 1.25 },
    dtypes: ['float64'],
  },
  { name: 'transformer tiny (learned positions, GELU MLP)', config: preset('transformer', 'tiny').config, dtypes: ['float32', 'float64'] },
  { name: 'transformer-moe tiny (learned positions, switch MoE)', config: preset('transformer-moe', 'tiny').config, dtypes: ['float32', 'float64'] },
  { name: 'jamba tiny (7 Mamba + 1 GQA attention, SwiGLU, top-2 MoE every other layer)', config: preset('jamba', 'tiny').config, dtypes: ['float32', 'float64'] },
  {
    name: 'grouped-query attention (6 heads, 2 KV heads) with rope beside Mamba',
    config: { model: 'transformer', pattern: 'A M', nHeads: 6, nKvHeads: 2, rope: true },
    dtypes: ['float32', 'float64'],
  },
  {
    name: 'multi-query attention (4 heads, 1 KV head), rope theta 500, length 13',
    config: { model: 'transformer', pattern: 'AF', nHeads: 4, nKvHeads: 1, rope: true, ropeTheta: 500, dFF: 16 },
    dtypes: ['float32', 'float64'],
    shape: [2, 13],
  },
  { name: 'multi-head attention with rope, length 7', config: { model: 'transformer', pattern: 'A*2', nHeads: 2, rope: true }, dtypes: ['float64'], shape: [3, 7] },
  {
    name: 'one token per row (L = 1), learned positions',
    config: { model: 'transformer', pattern: 'A M F', nHeads: 4, maxPositions: 4, dFF: 16 },
    dtypes: ['float32', 'float64'],
    shape: [3, 1],
  },
  {
    name: 'one row (batch 1): attention in a parallel group with Mamba, then top-2 MoE',
    config: { model: 'jamba', pattern: '(A|M) E', nHeads: 3, nKvHeads: 1, rope: true, numExperts: 3, topK: 2, expertHidden: 12, capacityFactor: 'dropless' },
    dtypes: ['float64'],
    shape: [1, 9],
  },
];

for (const { name, config, dtypes, drops, shape } of CASES) {
  for (const dtype of dtypes) {
    test(`${name}, ${dtype}: loss, expert counts and every gradient match the PyTorch reference`, async (t) => {
      const dir = scratchDir();
      const model = createModel({ vocabSize: 1001, dModel: 24, seed: 11, dtype, ...config });
      const [rows, length] = shape ?? [3, 17];
      const tokens = randomTokens(rows, length, 1001, 5);
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
