import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadTextCorpus } from '../../../kernel/src/corpus/text.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { createModel } from '../../../kernel/src/models/model.js';
import { writeSafetensors } from '../../../kernel/src/models/safetensors.js';
import { Trainer } from '../../../kernel/src/train/trainer.js';
import { C4_SAMPLE, randomTokens, scratchDir } from '../../helpers.js';
import { TINY_MODEL, TINY_TRAINER, tinyData } from '../../support/tiny.js';

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
  assert.throws(() => new Trainer(model, { batchSize: 2 ** 40, seqLen: 8 }), /trainer\.batchSize × \(seqLen \+ 1\) = 9895604649984 ids, more than one batch holds/);
  const trainer = new Trainer(model, { batchSize: 1, seqLen: 8 });
  await assert.rejects(trainer.fit(c4, { steps: 0 }), /fit: steps must be a positive integer/);
  await assert.rejects(trainer.fit(c4, { steps: 1 }), /the data's vocabulary \(50257\) is larger than the model's \(100\)/);
  await assert.rejects(trainer.step(randomTokens(1, 4, 200)), /outside the vocabulary \[0, 100\)/);
});

test('a damaged checkpoint is refused by name, and leaves the trainer and its model as they were', async () => {
  const saved = scratchDir();
  const first = new Trainer(createModel(TINY_MODEL), TINY_TRAINER);
  await first.fit(tinyData(), { steps: 2, evalBatches: 1 });
  first.saveCheckpoint(saved);
  const stateFile = join(saved, 'trainer.json');
  const state = readFileSync(stateFile, 'utf8');
  const optimizer = readFileSync(join(saved, 'optimizer.safetensors'));

  const fresh = new Trainer(createModel(TINY_MODEL), TINY_TRAINER);
  const weights = () => fresh.model.parameters().map((p) => [...fresh.model.getParameter(p.name)]);
  const before = { weights: weights(), options: { ...fresh.options } };
  const refused = (damage: () => void, message: RegExp) => {
    damage();
    assert.throws(() => fresh.loadCheckpoint(saved), (e: unknown) => e instanceof MambalabError && message.test(e.message), message.source);
    assert.equal(fresh.stepCount, 0);
    assert.deepEqual(fresh.options, before.options);
    assert.deepEqual(weights(), before.weights, 'no weight written');
    writeFileSync(stateFile, state);
    writeFileSync(join(saved, 'optimizer.safetensors'), optimizer);
  };
  refused(() => writeFileSync(stateFile, state.slice(0, 40)), new RegExp(`^checkpoint: cannot read ${stateFile} \\(`));
  refused(() => writeFileSync(stateFile, '[]'), /trainer\.json: the document is \[\], expected an object/);
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), step: -1 })), /trainer\.json: step is -1, expected a non-negative integer/);
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), sampler: { seed: 0 } })), /trainer\.json: sampler\.batches is undefined/);
  const options = JSON.parse(state).options;
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), options: { ...options, batchSize: 0 } })), /trainer\.json: options\.batchSize: expected a positive integer, got 0/);
  const sampler = JSON.parse(state).sampler;
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), sampler: { ...sampler, seqLen: 99 } })), /trainer\.json: sampler\.seqLen is 99, but options\.seqLen is 16: the file is damaged/);
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), sampler: { ...sampler, seed: 7 } })), /trainer\.json: sampler\.seed is 7, but options\.seed is 0/);
  refused(() => writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), sampler: { seed: 0, batches: 2 } })), /trainer\.json: sampler has neither rngState nor an epoch and position/);
  // The optimizer's moments are checked before the model's weights are replaced.
  refused(() => writeSafetensors(join(saved, 'optimizer.safetensors'), [{ name: 'other', shape: [1], data: Float32Array.from([0]) }]), /optimizer\.safetensors has no 'backbone\.embedding\.weight\.exp_avg'/);

  fresh.loadCheckpoint(saved);
  assert.equal(fresh.stepCount, 2, 'the intact checkpoint still loads');
});
