import assert from 'node:assert/strict';
import { test } from 'node:test';

import { preset } from '../../../kernel/src/models/presets.js';
import { sweepConfigs } from '../../../kernel/src/train/sweep.js';

test('sweepConfigs: every combination of the varied values over the base, the first field slowest, named by its values', () => {
  const base = preset('moe-mamba', 'tiny').config;
  const configs = sweepConfigs({ base, vary: { numExperts: [1, 4], pattern: ['ME', 'ME*2'] } });
  assert.deepEqual(configs.map((c) => c.arm.name), ['numExperts-1_pattern-ME', 'numExperts-1_pattern-ME-2', 'numExperts-4_pattern-ME', 'numExperts-4_pattern-ME-2']);
  assert.deepEqual(configs.map((c) => c.values), [
    { numExperts: 1, pattern: 'ME' },
    { numExperts: 1, pattern: 'ME*2' },
    { numExperts: 4, pattern: 'ME' },
    { numExperts: 4, pattern: 'ME*2' },
  ]);
  assert.deepEqual(configs[3]!.arm.model, { ...base, numExperts: 4, pattern: 'ME*2' });
  assert.equal(base.numExperts, 4, 'the base is not changed');
});

test('sweepConfigs names what is wrong with a spec', () => {
  const base = preset('mamba', 'tiny').config;
  assert.throws(() => sweepConfigs(undefined as never), /sweep: expected \{ base: <model config>, vary: \{ <config field>: \[values\] \} \}/);
  assert.throws(() => sweepConfigs({ base } as never), /sweep: vary must map config fields to arrays of values/);
  assert.throws(() => sweepConfigs({ base, vary: {} }), /sweep: vary names no config field/);
  assert.throws(() => sweepConfigs({ base, vary: { numExperts: [] } }), /sweep: vary\.numExperts must be a non-empty array of values, got \[\]/);
  assert.throws(() => sweepConfigs({ base, vary: { numExperts: 4 as never } }), /vary\.numExperts must be a non-empty array of values, got 4/);
});
