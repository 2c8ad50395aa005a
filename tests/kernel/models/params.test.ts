import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createModel } from '../../../kernel/src/models/model.js';
import { countParameters } from '../../../kernel/src/models/params.js';
import { preset, presetNames } from '../../../kernel/src/models/presets.js';

test('countParameters agrees with the engine on every tiny preset and odd configs', () => {
  const configs = [
    ...Object.keys(presetNames()).map((family) => preset(family, 'tiny').config),
    { model: 'moe-mamba', dModel: 24, pattern: 'ME F (M|E)', numExperts: 3, topK: 2, expertKind: 'swiglu', routerBias: true, dFF: 40 },
  ] as const;
  for (const config of configs) {
    const model = createModel({ ...config, vocabSize: 1000 });
    assert.deepEqual(countParameters({ ...config, vocabSize: 1000 }), model.parameterCount(), JSON.stringify(config));
  }
});

test("paper presets have the papers' parameter counts (embedding excluded)", () => {
  const m = (family: string, size: string) => countParameters(preset(family, size).config);
  const millions = (n: number) => Math.round(n / 1e6);
  // MoE-Mamba v1 (arXiv 2401.04081, table 1): Mamba 27M, Mamba-MLP 26M, MoE-Mamba 416M total / 26M active.
  assert.equal(millions(m('mamba', 'v1').nonEmbedding), 27);
  assert.equal(millions(m('mamba-mlp', 'v1').nonEmbedding), 26);
  assert.equal(millions(m('moe-mamba', 'v1').nonEmbedding), 416);
  assert.equal(millions(m('moe-mamba', 'v1').active), 26);
  // BlackMamba 340M/1.5B: ~1.4B / ~286M without the embedding.
  const bm = m('blackmamba', '340m-1.5b');
  assert.ok(Math.abs(bm.nonEmbedding - 1.40e9) < 0.01e9, `total ${bm.nonEmbedding}`);
  assert.equal(millions(bm.active), 286);
  const big = m('blackmamba', '630m-2.8b');
  assert.ok(big.nonEmbedding > 2.5e9 && big.nonEmbedding < 2.8e9, `2.8B model: ${big.nonEmbedding}`);
  assert.ok(big.active > 0.5e9 && big.active < 0.63e9, `630M active: ${big.active}`);
});
