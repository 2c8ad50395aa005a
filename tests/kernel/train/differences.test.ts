// What a run directory refusing to resume says: every field that differs, by its dotted path.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { differences } from '../../../kernel/src/train/differences.js';

test('differences names each differing leaf by its path, in key order, skipping the ignored ones', () => {
  const run = { model: { dModel: 64, pattern: 'M*2' }, trainer: { lr: 0.003, gradAccumulation: 1 }, data: 'c4', steps: 200 };
  const now = { model: { dModel: 64, pattern: 'M*4' }, trainer: { lr: 0.001, gradAccumulation: 4 }, data: 'c4', evalTokens: 100 };
  assert.deepEqual(differences(run, now, ['trainer.gradAccumulation']), [
    'evalTokens: absent in the run, 100 now',
    'model.pattern: "M*2" in the run, "M*4" now',
    'steps: 200 in the run, absent now',
    'trainer.lr: 0.003 in the run, 0.001 now',
  ]);
  assert.deepEqual(differences(run, structuredClone(run)), []);
  assert.deepEqual(differences([1, 2], [1, 3]), ['the config: [1,2] in the run, [1,3] now']);
});
