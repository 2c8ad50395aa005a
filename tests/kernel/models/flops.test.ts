import assert from 'node:assert/strict';
import { test } from 'node:test';

import { trainingFlopsPerToken } from '../../../kernel/src/models/flops.js';
import { countParameters } from '../../../kernel/src/models/params.js';

test('training FLOPs per token: 6 × active parameters + the LM head + the scan, whatever the length', () => {
  const config = { dModel: 64, pattern: 'M*2' };
  const { active } = countParameters(config);
  const head = 6 * 64 * 50264;
  const scan = 2 * 21 * 128 * 16;
  assert.equal(trainingFlopsPerToken(config, 128), 6 * active + head + scan);
  assert.equal(trainingFlopsPerToken(config, 4096), trainingFlopsPerToken(config, 128), 'a Mamba layer costs the same per token at any length');
});

test('an MoE layer counts only the experts a token uses', () => {
  const base = { model: 'moe-mamba', dModel: 32, pattern: 'ME', numExperts: 8, expertHidden: 64 } as const;
  const top1 = trainingFlopsPerToken(base, 64);
  const top2 = trainingFlopsPerToken({ ...base, topK: 2 }, 64);
  assert.equal(top2 - top1, 6 * 2 * 32 * 64, 'one more GELU expert (fc1 + fc2) per token');
});

test('attention: 6 × its projections plus 12 · len · d per layer (PaLM\'s count: the whole square, not halved for the mask)', () => {
  const config = { model: 'transformer', dModel: 64, pattern: 'AF*3', nHeads: 4, nKvHeads: 2, dFF: 128 } as const;
  const projections = 64 * (64 + 2 * 32) + 64 * 64; // q, k, v (2 of 4 heads' width each for k and v), out
  const { active } = countParameters(config);
  const head = 6 * 64 * 50264;
  assert.equal(trainingFlopsPerToken(config, 100), 6 * active + head + 3 * 12 * 100 * 64);
  assert.equal(active, 64 + 3 * (2 * 64 + projections + 2 * 64 * 128), 'norm_f, then per block two norms, attention, MLP');
  assert.equal(trainingFlopsPerToken(config, 200) - trainingFlopsPerToken(config, 100), 3 * 12 * 100 * 64, 'linear in the length per token');
});
