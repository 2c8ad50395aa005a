import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MambalabError } from '../../kernel/src/errors.js';
import { withUserErrors, type NativeModel } from '../../kernel/src/native.js';

// The engine's message when a batch does not fit (its shape as the engine writes it).
const OOM = 'out of GPU memory: pattern ME*8, d_model 512, batch 64 × 1024 needs about 91.3 GiB (79.1 GiB free)';

/** A stand-in engine model whose work fails with `error`. */
function failingModel(error: Error): NativeModel {
  const fail = () => Promise.reject(error);
  return { evaluate: fail, lossAndGradients: fail, trainStep: fail } as unknown as NativeModel;
}

test('running out of GPU memory reaches the user as a MambalabError with the engine\'s message intact', async () => {
  const engineError = new Error(OOM);
  const model = withUserErrors(failingModel(engineError));
  const tokens = new Int32Array(4);
  const optimizer = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 };
  for (const work of [model.evaluate(tokens, 2, 2), model.lossAndGradients(tokens, 2, 2), model.trainStep(tokens, 2, 2, 1e-3, optimizer)]) {
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
  Object.assign(throwing, { lossAndGradients: throwing.evaluate, trainStep: throwing.evaluate });
  await assert.rejects(withUserErrors(throwing).evaluate(new Int32Array(4), 2, 2), { name: 'MambalabError', message: OOM });
});

test('other engine errors pass through unchanged', async () => {
  const engineError = new Error('model is busy');
  await assert.rejects(withUserErrors(failingModel(engineError)).evaluate(new Int32Array(4), 2, 2), (e: unknown) => e === engineError);
});
