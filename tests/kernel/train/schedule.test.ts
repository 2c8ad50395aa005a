import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lrAt } from '../../../kernel/src/train/schedule.js';

const s = { lr: 1e-3, minLr: 1e-5, warmupSteps: 10, totalSteps: 110 };

test('lrAt warms up linearly to the peak', () => {
  assert.equal(lrAt(1, s), 1e-4);
  assert.equal(lrAt(5, s), 5e-4);
  assert.equal(lrAt(10, s), 1e-3);
});

test('lrAt decays along a cosine to the floor', () => {
  assert.ok(Math.abs(lrAt(60, s) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-15, 'half way is the midpoint');
  assert.equal(lrAt(110, s), 1e-5);
  assert.equal(lrAt(500, s), 1e-5, 'stays at the floor after the last step');
  for (let step = 11; step < 110; step++) assert.ok(lrAt(step + 1, s) <= lrAt(step, s), `monotone at ${step}`);
});

test('lrAt without warmup starts at the peak', () => {
  assert.equal(lrAt(0, { ...s, warmupSteps: 0 }), 1e-3);
});
