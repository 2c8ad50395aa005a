// Non-finite steps: the engine skips them, the trainer counts them, fit() stops after too many
// in a row; loss spikes against the running average.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOSS_SPIKE_FACTOR, StepGuard, TrainingDiverged } from '../../../kernel/src/train/guard.js';
import { scratchDir } from '../../helpers.js';
import { tinyData, tinyTrainer } from '../../support/tiny.js';

test('StepGuard counts skipped steps and runs of them, and flags a loss far above its running average', () => {
  const guard = new StepGuard();
  for (let i = 0; i < 30; i++) assert.equal(guard.observe(2 + 0.1 * Math.sin(i), false).lossSpike, undefined);
  assert.ok(Math.abs(guard.lossAverage - 2) < 0.1, `average ${guard.lossAverage}`);
  assert.deepEqual(guard.observe(Number.NaN, true), { nonfiniteSteps: 1, consecutive: 1 });
  assert.deepEqual(guard.observe(Number.POSITIVE_INFINITY, true), { nonfiniteSteps: 2, consecutive: 2 });
  assert.equal(guard.lossAverage, guard.lossAverage, 'skipped steps leave the average alone');
  const spike = guard.observe(7, false);
  assert.deepEqual([spike.nonfiniteSteps, spike.consecutive], [2, 0]);
  assert.ok(spike.lossSpike! > LOSS_SPIKE_FACTOR && Math.abs(spike.lossSpike! - 7 / 2) < 0.2, `ratio ${spike.lossSpike}`);
  assert.equal(guard.observe(2, false).lossSpike, undefined);
});

test('no spike before the average has some history', () => {
  const guard = new StepGuard();
  guard.observe(1, false);
  assert.equal(guard.observe(100, false).lossSpike, undefined);
});

test('a restored guard goes on bit for bit as the one it was saved from', () => {
  const losses = Array.from({ length: 40 }, (_, i) => 3 / (1 + 0.1 * i) + 0.01 * Math.cos(7 * i));
  const straight = new StepGuard();
  const first = new StepGuard();
  losses.slice(0, 25).forEach((l, i) => {
    straight.observe(l, i === 3);
    first.observe(l, i === 3);
  });
  const resumed = new StepGuard();
  resumed.restore(JSON.parse(JSON.stringify(first.save())));
  for (const l of [...losses.slice(25), 30]) assert.deepEqual(resumed.observe(l, false), straight.observe(l, false));
  assert.equal(resumed.lossAverage, straight.lossAverage);
});

test('a non-finite step changes no weight, moment or optimizer count, and is reported', async () => {
  const { model, trainer } = tinyTrainer();
  const data = tinyData();
  const batch = () => data.sampler('train', { batchSize: 2, seqLen: 16, seed: 3 }).next();
  await trainer.step(batch());
  const name = 'backbone.layers.0.mixer.in_proj.weight';
  const weight = model.getParameter(name);
  const snapshot = model.parameters().map((p) => [model.readSlot(p.name, 'value'), model.readSlot(p.name, 'adam_m'), model.readSlot(p.name, 'adam_v')]);
  const poisoned = Float32Array.from(weight);
  poisoned[0] = Number.POSITIVE_INFINITY;
  model.setParameter(name, poisoned);

  const bad = await trainer.step(batch());
  assert.equal(bad.skipped, true);
  assert.equal(bad.nonfiniteSteps, 1);
  assert.equal(Number.isFinite(bad.loss), false);
  assert.equal(bad.step, 2, 'the step and its batch are used up');
  assert.equal(model.engine.stepsDone, 1, "AdamW's step count (bias correction) did not advance");
  model.setParameter(name, weight);
  model.parameters().forEach((p, i) => {
    assert.deepEqual(model.readSlot(p.name, 'value'), snapshot[i]![0], `${p.name} unchanged`);
    assert.deepEqual(model.readSlot(p.name, 'adam_m'), snapshot[i]![1], `${p.name} first moment unchanged`);
    assert.deepEqual(model.readSlot(p.name, 'adam_v'), snapshot[i]![2], `${p.name} second moment unchanged`);
  });

  const good = await trainer.step(batch());
  assert.deepEqual([good.skipped, good.nonfiniteSteps, model.engine.stepsDone], [false, 1, 2]);
  assert.equal(trainer.nonfiniteSteps, 1);
});

test('fit stops after maxBadSteps non-finite steps in a row, naming the step and the last good checkpoint, and checkpoints none of them', async () => {
  // lr 1000 overflows the tiny model within a few steps, as in the issue.
  const dir = scratchDir();
  const { model, trainer } = tinyTrainer({}, { lr: 1000 });
  const seen: boolean[] = [];
  const error = await trainer
    .fit(tinyData(), { steps: 40, evalBatches: 1, checkpointDir: dir, checkpointEvery: 1, maxBadSteps: 3, onStep: (m) => seen.push(m.skipped) })
    .catch((e: unknown) => e);
  assert.ok(error instanceof TrainingDiverged, String(error));
  const firstBad = seen.indexOf(true) + 1;
  assert.ok(firstBad >= 2, 'a good step came first');
  assert.deepEqual(seen.slice(firstBad - 1), [true, true, true]);
  assert.equal(error.step, firstBad + 2);
  assert.equal(error.lastGoodCheckpoint?.step, firstBad - 1);
  assert.match(error.message, new RegExp(`diverged at step ${firstBad + 2}: 3 consecutive steps \\(${firstBad} to ${firstBad + 2}\\)`));
  assert.ok(error.message.includes(`the last good checkpoint is ${error.lastGoodCheckpoint!.dir} (step ${firstBad - 1})`), error.message);
  for (const p of model.parameters()) assert.ok(model.getParameter(p.name).every(Number.isFinite), `${p.name} stays finite`);

  const fresh = tinyTrainer({}, { lr: 1000 }).trainer;
  await assert.rejects(fresh.fit(tinyData(), { steps: 40, evalBatches: 1 }), /diverged at step \d+: 8 consecutive steps .* no checkpoint was written before it/);
  await assert.rejects(fresh.fit(tinyData(), { steps: 1, maxBadSteps: 0 }), /fit: maxBadSteps must be a positive integer, got 0/);
});
