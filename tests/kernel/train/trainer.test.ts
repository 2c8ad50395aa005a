import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadTextCorpus } from '../../../kernel/src/corpus/text.js';
import { createModel } from '../../../kernel/src/models/model.js';
import { Trainer } from '../../../kernel/src/train/trainer.js';
import { C4_SAMPLE, randomTokens, scratchDir } from '../../helpers.js';

const c4 = loadTextCorpus(C4_SAMPLE);
const tinyTraining = { batchSize: 4, seqLen: 64, lr: 3e-3, warmupSteps: 10, seed: 5 };

test('training the tiny Mamba on real C4 lowers eval loss by at least 1.5 nats in 200 steps', async (t) => {
  const model = createModel({ dModel: 64, pattern: 'M*2', seed: 1 });
  const trainer = new Trainer(model, tinyTraining);
  const seen: number[] = [];
  const result = await trainer.fit(c4, { steps: 200, evalBatches: 8, onStep: (m) => seen.push(m.step) });
  assert.equal(result.steps, 200);
  assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i + 1));
  const drop = result.initialEvalLoss - result.finalEvalLoss;
  assert.ok(drop >= 1.5, `eval loss ${result.initialEvalLoss.toFixed(3)} → ${result.finalEvalLoss.toFixed(3)} (drop ${drop.toFixed(3)})`);
  const last = result.history.at(-1)!;
  t.diagnostic(`eval loss ${result.initialEvalLoss.toFixed(3)} → ${result.finalEvalLoss.toFixed(3)} in 200 steps, ${(last.tokens / last.elapsedS).toFixed(0)} tokens/s`);
  assert.equal(last.tokens, 200 * 4 * 64);
  assert.ok(last.lr < 1e-4, 'the cosine has decayed by the last step');
  assert.ok(result.history.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.gradNorm) && m.tokensPerS > 0));
});

test('a resumed trainer continues exactly as the uninterrupted one', async () => {
  const config = { vocabSize: 50257, dModel: 32, pattern: 'M*2', seed: 9 };
  const options = { ...tinyTraining, batchSize: 2, seqLen: 32, totalSteps: 6 };
  const straight = new Trainer(createModel(config), options);
  const all = (await straight.fit(c4, { steps: 6, evalBatches: 1 })).history.map((m) => m.loss);

  const dir = scratchDir();
  const first = new Trainer(createModel(config), options);
  await first.fit(c4, { steps: 3, evalBatches: 1 });
  first.saveCheckpoint(dir);
  const resumed = new Trainer(createModel({ ...config, seed: 123 }), { ...options, lr: 1 });
  resumed.loadCheckpoint(dir);
  assert.equal(resumed.stepCount, 3);
  const rest = (await resumed.fit(c4, { steps: 3, evalBatches: 1 })).history.map((m) => m.loss);
  assert.deepEqual(rest, all.slice(3), 'same batches, weights, moments and schedule after resuming');
});

test('fit stops at a step boundary when its signal aborts', async () => {
  const trainer = new Trainer(createModel({ dModel: 16, pattern: 'M', seed: 2 }), { ...tinyTraining, batchSize: 1, seqLen: 16 });
  const abort = new AbortController();
  const result = await trainer.fit(c4, { steps: 50, evalBatches: 1, signal: abort.signal, onStep: (m) => m.step === 4 && abort.abort() });
  assert.equal(result.stopped, true);
  assert.equal(result.steps, 4);
  assert.equal(trainer.stepCount, 4);
});

test('Trainer rejects bad options and bad fit arguments by name', async () => {
  const model = createModel({ vocabSize: 100, dModel: 16, pattern: 'M' });
  assert.throws(() => new Trainer(model, { lr: -1 }), /trainer\.lr: expected a non-negative number, got -1/);
  assert.throws(() => new Trainer(model, { batchSize: 2.5 }), /trainer\.batchSize: expected a positive integer/);
  assert.throws(() => new Trainer(model, { beta2: 1 }), /beta1\/beta2/);
  const trainer = new Trainer(model, { batchSize: 1, seqLen: 8 });
  await assert.rejects(trainer.fit(c4, { steps: 0 }), /fit: steps must be a positive integer/);
  await assert.rejects(trainer.fit(c4, { steps: 1 }), /the data's vocabulary \(50257\) is larger than the model's \(100\)/);
  await assert.rejects(trainer.step(randomTokens(1, 4, 200)), /outside the vocabulary \[0, 100\)/);
});
