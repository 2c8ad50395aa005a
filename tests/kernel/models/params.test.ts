import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ModelConfig } from '../../../kernel/src/models/config.js';
import { createModel } from '../../../kernel/src/models/model.js';
import { countParameters } from '../../../kernel/src/models/params.js';
import { preset, presetNames } from '../../../kernel/src/models/presets.js';

// One test per config, so a family the engine cannot build yet fails alone, by name.
const ODD_CONFIGS: Record<string, Partial<ModelConfig>> = {
  'MoE with SwiGLU, top-2, router bias, an MLP and a parallel group': { model: 'moe-mamba', dModel: 24, pattern: 'ME F (M|E)', numExperts: 3, topK: 2, expertKind: 'swiglu', routerBias: true, dFF: 40 },
  "BlackMamba as released: GeGLU experts and MLP, final LayerNorm with bias": { model: 'blackmamba', dModel: 24, pattern: 'ME F', numExperts: 3, router: 'sinkhorn', routerBias: true, expertKind: 'geglu', mlpKind: 'geglu', capacityFactor: 'dropless', finalNorm: 'layernorm', dFF: 40 },
  'multi-query attention beside Mamba, with learned positions': { model: 'jamba', dModel: 24, pattern: 'MA (A|F)', nHeads: 6, nKvHeads: 1, maxPositions: 40 },
};
const CONFIGS = [...Object.keys(presetNames()).map((family) => [`${family} tiny`, preset(family, 'tiny').config] as const), ...Object.entries(ODD_CONFIGS)];

for (const [name, config] of CONFIGS) {
  test(`countParameters agrees with the engine's tensors: ${name}`, () => {
    const model = createModel({ ...config, vocabSize: 1000 });
    assert.deepEqual(countParameters({ ...config, vocabSize: 1000 }), model.parameterCount(), JSON.stringify(config));
  });
}

test('attention: (nHeads + 2 · nKvHeads) · headDim · d for [q; k; v], nHeads · headDim · d out; learned positions count as embedding', () => {
  const d = 48;
  const base = { model: 'transformer', dModel: d, pattern: 'A', nHeads: 6, vocabSize: 1000, padVocabMultiple: 8 } as const;
  const layer = (n: { nonEmbedding: number }) => n.nonEmbedding - 2 * d; // less its norm and norm_f
  assert.equal(layer(countParameters(base)), 4 * d * d, 'multi-head: q, k, v and out, each d × d');
  assert.equal(layer(countParameters({ ...base, nKvHeads: 2 })), (6 + 2 * 2) * 8 * d + d * d, 'grouped-query: k and v have 2 heads of 8');
  assert.equal(layer(countParameters({ ...base, nKvHeads: 1 })), (6 + 2) * 8 * d + d * d, 'multi-query');
  const positions = countParameters({ ...base, maxPositions: 100 });
  assert.equal(positions.embedding, (1000 + 100) * d);
  assert.equal(positions.nonEmbedding, countParameters(base).nonEmbedding, 'positions are not part of the model size');
  assert.equal(positions.active, positions.nonEmbedding);
});

test("paper presets have the papers' parameter counts (embedding excluded)", () => {
  const m = (family: string, size: string) => countParameters(preset(family, size).config);
  const millions = (n: number) => Math.round(n / 1e6);
  // MoE-Mamba v1 (arXiv 2401.04081, table 1): Mamba 27M, Mamba-MLP 26M, MoE-Mamba 416M total / 26M active.
  assert.equal(millions(m('mamba', 'v1').nonEmbedding), 27);
  assert.equal(millions(m('mamba-mlp', 'v1').nonEmbedding), 26);
  assert.equal(millions(m('moe-mamba', 'v1').nonEmbedding), 416);
  assert.equal(millions(m('moe-mamba', 'v1').active), 26);
  // The same table's baselines: Transformer 25M; Transformer-MoE 545M total / 25M active.
  assert.equal(millions(m('transformer', 'v1').nonEmbedding), 25);
  assert.equal(millions(m('transformer-moe', 'v1').nonEmbedding), 545);
  assert.equal(millions(m('transformer-moe', 'v1').active), 25);
  // BlackMamba 340M/1.5B: ~1.4B / ~286M without the embedding.
  const bm = m('blackmamba', '340m-1.5b');
  assert.ok(Math.abs(bm.nonEmbedding - 1.40e9) < 0.01e9, `total ${bm.nonEmbedding}`);
  assert.equal(millions(bm.active), 286);
  const big = m('blackmamba', '630m-2.8b');
  assert.ok(big.nonEmbedding > 2.5e9 && big.nonEmbedding < 2.8e9, `2.8B model: ${big.nonEmbedding}`);
  assert.ok(big.active > 0.5e9 && big.active < 0.63e9, `630M active: ${big.active}`);
  // The Jamba-style preset is named as BlackMamba's are: active / total with the embedding.
  const jamba = m('jamba', '410m-1.6b');
  assert.equal(millions(jamba.active + jamba.embedding), 414);
  assert.equal(Math.round(jamba.total / 1e8) / 10, 1.6);
});
