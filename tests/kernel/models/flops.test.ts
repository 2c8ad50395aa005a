import assert from 'node:assert/strict';
import { test } from 'node:test';

import { trainingFlopsPerToken } from '../../../kernel/src/models/flops.js';
import { countParameters } from '../../../kernel/src/models/params.js';

test('training FLOPs per token: 6 × active parameters + the LM head + the scan', () => {
  const config = { dModel: 64, pattern: 'M*2' };
  const { active } = countParameters(config);
  const head = 6 * 64 * 50264;
  const scan = 2 * 21 * 128 * 16;
  assert.equal(trainingFlopsPerToken(config), 6 * active + head + scan);
});

test('an MoE layer counts only the experts a token uses', () => {
  const base = { model: 'moe-mamba', dModel: 32, pattern: 'ME', numExperts: 8, expertHidden: 64 } as const;
  const top1 = trainingFlopsPerToken(base);
  const top2 = trainingFlopsPerToken({ ...base, topK: 2 });
  assert.equal(top2 - top1, 6 * 2 * 32 * 64, 'one more GELU expert (fc1 + fc2) per token');
});
