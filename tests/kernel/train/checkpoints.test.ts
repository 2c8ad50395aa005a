// Checkpoints that appear whole or not at all, the newest K kept, and training that checkpoints
// as it goes and loads the newest that loads.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  CheckpointSchedule,
  listCheckpoints,
  newestCheckpoint,
  removeCheckpointsAfter,
  writeCheckpoint,
} from '../../../kernel/src/train/checkpoints.js';
import { scratchDir } from '../../helpers.js';
import { tinyData, tinyTrainer } from '../../support/tiny.js';

/** A stand-in checkpoint: a trainer.json naming its step, and one more file. */
const fake = (step: number) => (dir: string) => {
  writeFileSync(join(dir, 'weights.bin'), `weights of step ${step}`);
  writeFileSync(join(dir, 'trainer.json'), JSON.stringify({ step }));
};

test('each checkpoint appears whole under checkpoints/step-N, `checkpoint` names the newest, the newest K are kept', () => {
  const root = scratchDir();
  for (const step of [5, 10, 15]) writeCheckpoint(root, step, fake(step), 2);
  assert.deepEqual(readdirSync(join(root, 'checkpoints')), ['step-00000010', 'step-00000015']);
  assert.equal(readlinkSync(join(root, 'checkpoint')), join('checkpoints', 'step-00000015'));
  assert.equal(readFileSync(join(root, 'checkpoint', 'weights.bin'), 'utf8'), 'weights of step 15');
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [10, 15]);
  assert.equal(newestCheckpoint(root)?.dir, join(root, 'checkpoints', 'step-00000015'));
  assert.equal(newestCheckpoint(scratchDir()), undefined);
});

test('a write that fails, or a process killed while writing, leaves the previous checkpoints as they were', () => {
  const root = scratchDir();
  writeCheckpoint(root, 1, fake(1));
  assert.throws(() => writeCheckpoint(root, 2, (dir) => {
    fake(2)(dir);
    throw new Error('disk full');
  }), /disk full/);
  assert.deepEqual(readdirSync(join(root, 'checkpoints')), ['step-00000001'], 'no temporary directory is left');
  // What a killed writer leaves: a temporary directory and a half-removed old one. Neither counts, and the next write clears them.
  mkdirSync(join(root, 'checkpoints', '.tmp-step-00000002-999'));
  mkdirSync(join(root, 'checkpoints', '.old-999-1'));
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [1]);
  writeCheckpoint(root, 3, fake(3));
  assert.deepEqual(readdirSync(join(root, 'checkpoints')), ['step-00000001', 'step-00000003']);
  assert.throws(() => writeCheckpoint(root, 4, fake(4), 0), /keep must be a positive integer, got 0/);
});

test('a checkpoint/ directory from before checkpoints/ existed counts, and joins the others at the next write', () => {
  const root = scratchDir();
  mkdirSync(join(root, 'checkpoint'));
  fake(7)(join(root, 'checkpoint'));
  assert.deepEqual(listCheckpoints(root), [{ step: 7, dir: join(root, 'checkpoint') }]);
  writeCheckpoint(root, 9, fake(9), 5);
  assert.deepEqual(readdirSync(join(root, 'checkpoints')), ['step-00000007', 'step-00000009']);
  assert.equal(readlinkSync(join(root, 'checkpoint')), join('checkpoints', 'step-00000009'));
});

test('checkpoints after a step are removed when training goes on from it; `checkpoint` follows', () => {
  const root = scratchDir();
  for (const step of [2, 4, 6]) writeCheckpoint(root, step, fake(step), 5);
  removeCheckpointsAfter(root, 4);
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [2, 4]);
  assert.equal(readlinkSync(join(root, 'checkpoint')), join('checkpoints', 'step-00000004'));
  removeCheckpointsAfter(root, 0);
  assert.deepEqual([listCheckpoints(root), existsSync(join(root, 'checkpoint'))], [[], false]);
});

test('the schedule: every N steps, and/or every M minutes of wall time since the last checkpoint', () => {
  let now = 0;
  const bySteps = new CheckpointSchedule(3, 0, () => now);
  assert.deepEqual([1, 2, 3, 4, 6].map((s) => bySteps.due(s)), [false, false, true, false, true]);
  const byTime = new CheckpointSchedule(0, 2, () => now);
  now = 119_000;
  assert.equal(byTime.due(1), false);
  now = 120_000;
  assert.equal(byTime.due(2), true);
  byTime.written();
  now = 200_000;
  assert.equal(byTime.due(3), false);
});

test('fit checkpoints every N steps into a directory, and a fresh trainer loads the newest and goes on exactly', async () => {
  const root = scratchDir();
  const data = tinyData();
  const straight = tinyTrainer({}, { totalSteps: 7 }).trainer;
  const all = (await straight.fit(data, { steps: 7, evalBatches: 1 })).history;

  const first = tinyTrainer({}, { totalSteps: 7 }).trainer;
  let before: number[] = [];
  await first.fit(data, { steps: 5, evalBatches: 1, checkpointDir: root, checkpointEvery: 2, keepCheckpoints: 3, beforeCheckpoint: (s) => (before = [...before, s]) });
  assert.deepEqual(before, [2, 4]);
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [2, 4]);

  const resumed = tinyTrainer({ seed: 99 }, { lr: 1 }).trainer;
  const loaded = resumed.loadCheckpoint(root);
  assert.deepEqual([loaded.step, loaded.passedOver, resumed.stepCount], [4, [], 4]);
  const rest = (await resumed.fit(data, { steps: 3, evalBatches: 1, initialEval: false })).history;
  assert.deepEqual(rest.map((m) => m.loss), all.slice(4).map((m) => m.loss), 'weights, moments, schedule and batch order restored');
  assert.deepEqual(rest.map((m) => [m.step, m.tokens, m.lr]), all.slice(4).map((m) => [m.step, m.tokens, m.lr]));
  await assert.rejects(tinyTrainer().trainer.fit(data, { steps: 1, checkpointEvery: 2 }), /checkpointEvery and checkpointMinutes need a checkpointDir/);
});

test('a checkpoint after a skipped step keeps the optimizer step count and the guard, so the run goes on bit for bit', async () => {
  const data = tinyData();
  const poisonStep2 = async (t: ReturnType<typeof tinyTrainer>) => {
    const name = 'backbone.norm_f.weight';
    const sampler = data.sampler('train', { batchSize: 2, seqLen: 16, seed: 5 });
    await t.trainer.step(sampler.next());
    const weight = t.model.getParameter(name);
    t.model.setParameter(name, weight.map(() => Number.NaN));
    assert.equal((await t.trainer.step(sampler.next())).skipped, true);
    t.model.setParameter(name, weight);
    return sampler;
  };
  const straight = tinyTrainer();
  const sampler = await poisonStep2(straight);
  const first = tinyTrainer();
  await poisonStep2(first);
  const dir = scratchDir();
  first.trainer.saveCheckpoint(dir);
  assert.equal(JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8')).optimizerSteps, 1);
  const resumed = tinyTrainer();
  resumed.trainer.loadCheckpoint(dir);
  assert.deepEqual([resumed.trainer.stepCount, resumed.model.engine.stepsDone, resumed.trainer.nonfiniteSteps], [2, 1, 1]);
  const batch = sampler.next();
  const a = await straight.trainer.step(batch);
  const b = await resumed.trainer.step(batch);
  assert.deepEqual([b.loss, b.gradNorm, b.nonfiniteSteps], [a.loss, a.gradNorm, a.nonfiniteSteps]);
  for (const p of straight.model.parameters()) assert.deepEqual(resumed.model.getParameter(p.name), straight.model.getParameter(p.name));
});

test('loading a directory of checkpoints passes over a newest one that does not load, and says why', async () => {
  const root = scratchDir();
  const { trainer } = tinyTrainer();
  await trainer.fit(tinyData(), { steps: 4, evalBatches: 1, checkpointDir: root, checkpointEvery: 2 });
  const broken = join(root, 'checkpoints', 'step-00000004', 'model.safetensors');
  truncateSync(broken, 100);
  const back = tinyTrainer().trainer;
  const loaded = back.loadCheckpoint(root);
  assert.equal(loaded.step, 2);
  assert.equal(loaded.passedOver.length, 1);
  assert.match(loaded.passedOver[0]!.error, /step-00000004\/model\.safetensors is not a valid safetensors file/);

  truncateSync(join(root, 'checkpoints', 'step-00000002', 'optimizer.safetensors'), 10);
  const untouched = tinyTrainer();
  const weights = untouched.model.getParameter('backbone.embedding.weight');
  assert.throws(() => untouched.trainer.loadCheckpoint(root), /no checkpoint in .* loads:\n .*step-00000004.*\n .*step-00000002\/optimizer\.safetensors/);
  assert.deepEqual(untouched.model.getParameter('backbone.embedding.weight'), weights, 'nothing was changed');
  assert.equal(untouched.trainer.stepCount, 0);
  assert.throws(() => untouched.trainer.loadCheckpoint(scratchDir()), /holds no checkpoint \(no trainer\.json, no checkpoints\/step-\*\)/);
});

test('a checkpoint refuses non-finite weights, naming the parameter, and keeps the previous ones', async () => {
  const root = scratchDir();
  const { model, trainer } = tinyTrainer();
  await trainer.fit(tinyData(), { steps: 1, evalBatches: 1 });
  trainer.writeCheckpoint(root);
  const values = model.getParameter('backbone.layers.0.mixer.D');
  values[1] = Number.NaN;
  model.setParameter('backbone.layers.0.mixer.D', values);
  await trainer.step(tinyData().sampler('train', { batchSize: 2, seqLen: 16, seed: 1 }).next());
  assert.throws(() => trainer.writeCheckpoint(root), /refusing to write non-finite weights \('backbone\.layers\.0\.mixer\.D' holds NaN at index 1\); the previous checkpoints are kept/);
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [1]);
  assert.deepEqual(readdirSync(join(root, 'checkpoints')), ['step-00000001']);
});

test('trainer.json from before the guard and gradient accumulation still loads', async () => {
  const dir = scratchDir();
  const { trainer } = tinyTrainer();
  await trainer.fit(tinyData(), { steps: 2, evalBatches: 1 });
  trainer.saveCheckpoint(dir);
  const state = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8'));
  delete state.optimizerSteps;
  delete state.guard;
  delete state.options.gradAccumulation;
  writeFileSync(join(dir, 'trainer.json'), JSON.stringify(state));
  const back = tinyTrainer().trainer;
  back.loadCheckpoint(dir);
  assert.deepEqual([back.stepCount, back.model.engine.stepsDone, back.options.gradAccumulation, back.nonfiniteSteps], [2, 2, 1, 0]);
  writeFileSync(join(dir, 'trainer.json'), JSON.stringify({ ...state, step: -1 }));
  assert.throws(() => back.loadCheckpoint(dir), /trainer\.json: step is -1, expected a non-negative integer/);
  writeFileSync(join(dir, 'trainer.json'), '{"step": 1,');
  assert.throws(() => back.loadCheckpoint(dir), /cannot read .*trainer\.json/);
});
