import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MambalabError } from '../../kernel/src/errors.js';
import { resolveConfig, toNativeConfig } from '../../kernel/src/models/config.js';
import { countParameters } from '../../kernel/src/models/params.js';
import { preset } from '../../kernel/src/models/presets.js';
import { native, withUserErrors, type NativeModel } from '../../kernel/src/native.js';

// The engine's message when a batch does not fit (its shape as the engine writes it).
const OOM = 'out of GPU memory: pattern ME*8, d_model 512, batch 64 × 1024 needs about 91.3 GiB (79.1 GiB free)';

/** A stand-in engine model whose work fails with `error`. */
function failingModel(error: Error): NativeModel {
  const fail = () => Promise.reject(error);
  return {
    read: () => {
      throw error;
    },
    evaluate: fail,
    lossAndGradients: fail,
    trainStep: fail,
    parallelLogits: fail,
    generateStart: fail,
    generateNext: fail,
    generateFeed: fail,
    joinRanks: fail,
    fromRankZero: fail,
  } as unknown as NativeModel;
}

test('running out of GPU memory reaches the user as a MambalabError with the engine\'s message intact', async () => {
  const engineError = new Error(OOM);
  const model = withUserErrors(failingModel(engineError));
  const tokens = new Int32Array(4);
  const optimizer = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 };
  const sampling = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 };
  for (const work of [
    model.evaluate(tokens, 2, 2),
    model.lossAndGradients(tokens, 2, 2),
    model.trainStep(tokens, 2, 2, 1e-3, optimizer),
    model.generateStart(tokens, Int32Array.of(2, 2), 4, sampling, new Int32Array()),
    model.generateNext(4, 100),
  ]) {
    await assert.rejects(work, (e: unknown) => {
      assert.ok(e instanceof MambalabError, `a MambalabError, got ${String(e)}`);
      assert.equal(e.message, OOM);
      assert.equal(e.cause, engineError);
      return true;
    });
  }
});

test('an out-of-memory error thrown before the work starts is converted too', async () => {
  const throwing = { evaluate: () => { throw new Error(OOM); } } as unknown as NativeModel;
  for (const work of ['read', 'lossAndGradients', 'trainStep', 'parallelLogits', 'generateStart', 'generateNext', 'generateFeed', 'joinRanks', 'fromRankZero']) {
    Object.assign(throwing, { [work]: throwing.evaluate });
  }
  await assert.rejects(withUserErrors(throwing).evaluate(new Int32Array(4), 2, 2), { name: 'MambalabError', message: OOM });
});

test('a rank that waits in vain, at a step, at rank 0\'s decision or at a sharded moment read, fails with a MambalabError', async () => {
  const engineError = new Error('data parallel: rank 1 of 2 waited 1 s at a gather for the other ranks: one of them has stopped or hangs');
  const model = withUserErrors(failingModel(engineError));
  assert.throws(() => model.read('w', 'adam_m', new Float32Array(1)), { name: 'MambalabError', message: engineError.message });
  await assert.rejects(model.fromRankZero(Float64Array.of(1)), { name: 'MambalabError', message: engineError.message });
  await assert.rejects(model.trainStep(new Int32Array(4), 2, 2, 1e-3, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 }), {
    name: 'MambalabError',
  });
});

test('other engine errors pass through unchanged', async () => {
  const engineError = new Error('model is busy');
  await assert.rejects(withUserErrors(failingModel(engineError)).evaluate(new Int32Array(4), 2, 2), (e: unknown) => e === engineError);
});

test('estimateTrainingMemory: the engine sizes a training step from the config, the batch and the precision', () => {
  const config = toNativeConfig(resolveConfig(preset('mamba', 'v1').config));
  const params = countParameters(preset('mamba', 'v1').config).total;
  const small = native().estimateTrainingMemory(config, params, 8, 1024, 2);
  const big = native().estimateTrainingMemory(config, params, 64, 1024, 2);
  const fp32 = native().estimateTrainingMemory(config, params, 64, 1024, 4);
  assert.equal(small.weights, params * 18, 'fp32 weights, gradients and two moments plus a bf16 copy');
  assert.ok(Math.abs(big.activations / small.activations - 8) < 1e-9, 'activations scale with the tokens');
  assert.ok(fp32.activations > big.activations && fp32.weights === params * 16);
  assert.equal(big.total, big.weights + big.activations + big.transient);
  assert.ok(big.total > 10 * 2 ** 30 && big.total < 30 * 2 ** 30, `mamba v1 at 64 × 1024 in bf16: ${big.total / 2 ** 30} GiB`);
  assert.throws(() => native().estimateTrainingMemory({ ...config, router: 'topk' }, params, 8, 1024, 2), /'router' must be 'switch' or 'sinkhorn'/);
});
