import assert from 'node:assert/strict';
import { test } from 'node:test';

import { paddedVocabSize, resolveConfig, toNativeConfig } from '../../../kernel/src/models/config.js';
import { preset, presetNames } from '../../../kernel/src/models/presets.js';

test('resolveConfig fills the papers defaults', () => {
  const c = resolveConfig({ dModel: 128 });
  assert.equal(c.dState, 16);
  assert.equal(c.dConv, 4);
  assert.equal(c.expand, 2);
  assert.equal(c.normEps, 1e-5);
  assert.equal(paddedVocabSize(c), 50264); // 50257 rounded up to a multiple of 8
  assert.equal(toNativeConfig(c).layers, 'M M');
});

test('resolveConfig names the bad field', () => {
  const cases: [object, RegExp][] = [
    [{ dModel: 0 }, /config\.dModel: expected an integer in \[1, 65536\], got 0/],
    [{ dModel: 12.5 }, /config\.dModel/],
    [{ vocabSize: -3 }, /config\.vocabSize/],
    [{ dState: '16' }, /config\.dState: .*got "16"/],
    [{ pattern: 'MZ' }, /unknown layer 'Z'/],
    [{ dtype: 'float16' }, /config\.dtype/],
    [{ device: 'tpu' }, /config\.device/],
    [{ dtMin: 0.5, dtMax: 0.1 }, /config\.dtMin: expected a value ≤ dtMax/],
    [{ dmodel: 64 }, /config\.dmodel: unknown field/],
    [{ model: 'transformer' }, /config\.model/],
    [{ seed: -1 }, /config\.seed/],
  ];
  for (const [partial, message] of cases) {
    assert.throws(() => resolveConfig(partial as never), message, JSON.stringify(partial));
  }
});

test('presets carry a config and training settings', () => {
  assert.deepEqual(presetNames().mamba, ['tiny', 'small', 'v1']);
  const tiny = preset('mamba', 'tiny');
  assert.equal(resolveConfig(tiny.config).dModel, 64);
  assert.ok(tiny.training.batchSize > 0 && tiny.training.lr > 0);
  assert.equal(toNativeConfig(resolveConfig(preset('mamba', 'v1').config)).layers, Array(16).fill('M').join(' '));
  assert.throws(() => preset('mamba', 'huge'), /--size huge: unknown size for mamba \(known: tiny, small, v1\)/);
  assert.throws(() => preset('gpt', 'tiny'), /--model gpt: unknown model/);
});
