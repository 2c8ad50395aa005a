import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_CONFIG, paddedVocabSize, resolveConfig, toNativeConfig } from '../../../kernel/src/models/config.js';
import { preset, presetNames } from '../../../kernel/src/models/presets.js';

test('resolveConfig fills the papers defaults', () => {
  const c = resolveConfig({ dModel: 128 });
  assert.equal(c.dState, 16);
  assert.equal(c.dConv, 4);
  assert.equal(c.expand, 2);
  assert.equal(c.normEps, 1e-5);
  assert.equal(paddedVocabSize(c), 50264); // 50257 rounded up to a multiple of 8
  assert.deepEqual(toNativeConfig(c).layers, [['M'], ['M']]);
});

test('precision defaults to bf16 and deterministic to false; both are kept as given', () => {
  const defaults = resolveConfig({});
  assert.equal(defaults.precision, 'bf16');
  assert.equal(defaults.deterministic, false);
  const given = resolveConfig({ device: 'cuda', precision: 'fp32', deterministic: true });
  assert.deepEqual([given.device, given.precision, given.deterministic], ['cuda', 'fp32', true]);
  // float64 with auto is allowed: auto keeps such a model on the CPU (models/device.ts).
  assert.equal(resolveConfig({ device: 'auto', dtype: 'float64' }).dtype, 'float64');
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
    [{ device: 'cuda', dtype: 'float64' }, /config\.dtype: expected "float32" on device "cuda" \(float64 runs on the CPU only\), got "float64"/],
    [{ precision: 'fp16' }, /config\.precision: expected "bf16" or "fp32", got "fp16"/],
    [{ finalNorm: 'batchnorm' }, /config\.finalNorm: expected "rmsnorm" or "layernorm", got "batchnorm"/],
    [{ expertKind: 'relu' }, /config\.expertKind: expected "gelu", "swiglu" or "geglu", got "relu"/],
    [{ precision: 'BF16' }, /config\.precision/],
    [{ deterministic: 'yes' }, /config\.deterministic: expected true or false, got "yes"/],
    [{ deterministic: 1 }, /config\.deterministic: expected true or false, got 1/],
    [{ dtMin: 0.5, dtMax: 0.1 }, /config\.dtMin: expected a value ≤ dtMax/],
    [{ dmodel: 64 }, /config\.dmodel: unknown field/],
    [{ model: 'gpt' }, /config\.model: expected one of mamba, .*, transformer, transformer-moe, jamba, got "gpt"/],
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
  assert.deepEqual(toNativeConfig(resolveConfig(preset('mamba', 'v1').config)).layers, Array.from({ length: 16 }, () => ['M']));
});

test('preset errors name the call, not command-line flags (the CLI names its flags: tests/kernel/cli)', () => {
  assert.throws(() => preset('mamba', 'huge'), { name: 'MambalabError', message: 'preset("mamba", "huge"): unknown size (mamba has tiny, small, v1)' });
  assert.throws(() => preset('gpt', 'tiny'), { name: 'MambalabError', message: 'preset("gpt", …): unknown model (known: mamba, mamba-mlp, moe-mamba, parallel-moe-mamba, blackmamba, transformer, transformer-moe, jamba)' });
});

test('auxLossWeight with the Sinkhorn router: unset it resolves to 0, the weight that applies; set, it is an error', () => {
  assert.equal(resolveConfig({ router: 'sinkhorn' }).auxLossWeight, 0);
  assert.equal(resolveConfig(preset('blackmamba', 'tiny').config).auxLossWeight, 0);
  assert.equal(resolveConfig({ router: 'switch' }).auxLossWeight, 0.01, 'the switch default stays');
  assert.throws(() => resolveConfig({ router: 'sinkhorn', auxLossWeight: 0.05 }), {
    name: 'MambalabError',
    message: 'config.auxLossWeight: expected 0 with router "sinkhorn" (Sinkhorn routing balances the experts itself and adds no auxiliary loss; router "switch" has one), got 0.05',
  });
  // Configs saved before this check hold the switch default for Sinkhorn models: they still load.
  assert.equal(resolveConfig({ ...DEFAULT_CONFIG, router: 'sinkhorn' }).auxLossWeight, 0);
});

test('attention defaults: 8 heads, key/value heads as many as the query heads unless set, no positional encoding', () => {
  const c = resolveConfig({ model: 'transformer', pattern: 'AF' });
  assert.deepEqual([c.nHeads, c.nKvHeads, c.rope, c.ropeTheta, c.maxPositions], [8, 8, false, 10000, 0]);
  assert.equal(resolveConfig({ pattern: 'A', nHeads: 4 }).nKvHeads, 4, 'unset nKvHeads follows nHeads: multi-head');
  assert.equal(resolveConfig({ pattern: 'A', nHeads: 4, nKvHeads: 1 }).nKvHeads, 1, 'multi-query');
  assert.deepEqual(toNativeConfig(resolveConfig({ pattern: '(A|M) AE', nHeads: 4, nKvHeads: 2, rope: true })).layers, [['A', 'M'], ['A'], ['E']]);
  const native = toNativeConfig(resolveConfig({ pattern: 'A', nHeads: 4, nKvHeads: 2, rope: true, ropeTheta: 500000 }));
  assert.deepEqual([native.nHeads, native.nKvHeads, native.rope, native.ropeTheta, native.maxPositions], [4, 2, true, 500000, 0], 'the engine reads the fields by these names');
});

test('attention and position fields are checked before anything is allocated, naming the field', () => {
  const cases: [object, string][] = [
    [{ pattern: 'A', dModel: 64, nHeads: 6 }, 'config.nHeads: expected a divisor of dModel (64), so that every head has dModel / nHeads dimensions, got 6'],
    [{ pattern: 'MA', nHeads: 8, nKvHeads: 3 }, 'config.nKvHeads: expected a divisor of nHeads (8), so that each key/value head serves the same number of query heads, got 3'],
    [{ pattern: 'A', nHeads: 4, nKvHeads: 8 }, 'config.nKvHeads: expected a divisor of nHeads (4), so that each key/value head serves the same number of query heads, got 8'],
    [{ pattern: 'A', dModel: 60, nHeads: 4, rope: true }, 'config.rope: expected false with an odd head dimension (dModel / nHeads = 60 / 4 = 15; rope rotates pairs of dimensions), got true'],
    [{ pattern: 'A', rope: true, maxPositions: 256 }, 'config.maxPositions: expected 0 with rope: true (choose rotary or learned positions, not both), got 256'],
    [{ pattern: 'A', nHeads: 0 }, 'config.nHeads: expected an integer in [1, 4096], got 0'],
    [{ pattern: 'A', nKvHeads: 2.5 }, 'config.nKvHeads: expected an integer in [1, 4096], got 2.5'],
    [{ pattern: 'A', rope: 'yes' }, 'config.rope: expected true or false, got "yes"'],
    [{ pattern: 'A', ropeTheta: 0 }, 'config.ropeTheta: expected a positive finite number, got 0'],
    [{ maxPositions: -1 }, 'config.maxPositions: expected an integer in [0, 16777216] (0: no learned positions), got -1'],
    [{ maxPositions: 1.5 }, 'config.maxPositions: expected an integer in [0, 16777216] (0: no learned positions), got 1.5'],
  ];
  for (const [partial, message] of cases) {
    assert.throws(() => resolveConfig(partial as never), { name: 'MambalabError', message }, JSON.stringify(partial));
  }
  // Head shapes only matter where there is attention: a Mamba model of any width keeps the defaults.
  assert.equal(resolveConfig({ dModel: 60, nHeads: 7, rope: true }).nHeads, 7);
});
