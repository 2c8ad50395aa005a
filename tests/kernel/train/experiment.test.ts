// experiment(): several models on the same batches, compared with the baseline.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { preset } from '../../../kernel/src/models/presets.js';
import { experiment } from '../../../kernel/src/train/experiment.js';
import { loadRun } from '../../../kernel/src/train/runs.js';
import { TrainingInterrupted } from '../../../kernel/src/train/trainer.js';
import { withKernelInterrupts } from '../../support/interrupt.js';
import { recording } from '../../support/recording.js';
import { schemaErrors } from '../../support/schema.js';
import { TINY_MODEL, TINY_TRAINER, tinyData } from '../../support/tiny.js';
import { scratchDir } from '../../helpers.js';

const tmp = () => scratchDir('mambalab-experiment-');

test('every arm trains on the same batches in the same order, and is compared with the baseline', async () => {
  const dir = join(tmp(), 'widths');
  const { source, batches } = recording(tinyData());
  const result = await experiment(
    [
      { name: 'narrow', model: { ...TINY_MODEL, dModel: 8 } },
      { name: 'wide', model: { ...TINY_MODEL, dModel: 32 }, trainer: { lr: 5e-3 } },
    ],
    source,
    { steps: 15, dir, trainer: TINY_TRAINER, evalBatches: 1, smoothing: 0.5 },
  );
  assert.equal(result.stopped, false);
  assert.deepEqual(result.runs.map((r) => [r.name, r.status, r.steps]), [['narrow', 'done', 15], ['wide', 'done', 15]]);
  assert.equal(batches.length, 2);
  assert.equal(batches[0]!.length, 15);
  assert.deepEqual(batches[1], batches[0]);
  assert.equal(result.runs[1]!.config.trainer.lr, 5e-3);

  assert.equal(result.comparisons.length, 1);
  const c = result.comparisons[0]!;
  assert.deepEqual([c.baseline, c.candidate, c.smoothing, c.axis], ['narrow', 'wide', 0.5, 'step']);
  assert.equal(c.baselineAt, 15);

  const doc = JSON.parse(readFileSync(join(dir, 'experiment.mambalab.json'), 'utf8'));
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.plots.map((p: { kind: string }) => p.kind), ['loss', 'savings']);
  assert.equal(loadRun(join(dir, 'wide')).steps, 15);
});

test('the papers\' comparison: MoE-Mamba against the Transformer-MoE baseline, with expert counts for both and the savings plot', async () => {
  const dir = join(tmp(), 'baselines');
  const arm = (name: string, model: string) => ({ name, model: { ...preset(model, 'tiny').config, vocabSize: 256 } });
  const result = await experiment([arm('transformer-moe', 'transformer-moe'), arm('moe-mamba', 'moe-mamba')], tinyData(), {
    steps: 12,
    dir,
    trainer: TINY_TRAINER,
    evalBatches: 1,
    expertsEvery: 4,
  });
  assert.deepEqual(result.runs.map((r) => [r.name, r.status, r.steps]), [['transformer-moe', 'done', 12], ['moe-mamba', 'done', 12]]);
  for (const run of result.runs) {
    assert.ok(run.train.loss.at(-1)! < run.train.loss[0]!, `${run.name} learns: ${run.train.loss[0]} → ${run.train.loss.at(-1)}`);
    assert.deepEqual(run.experts?.step, [4, 8, 12], `${run.name} records its experts' token counts`);
    assert.equal(run.experts!.counts[0]![0]!.reduce((a, b) => a + b, 0) + run.experts!.dropped![0]![0]!, 2 * 16, 'every token is routed or dropped');
  }
  const c = result.comparisons[0]!;
  assert.deepEqual([c.baseline, c.candidate], ['transformer-moe', 'moe-mamba']);
  const doc = JSON.parse(readFileSync(join(dir, 'experiment.mambalab.json'), 'utf8'));
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.plots.map((p: { kind: string }) => p.kind), ['loss', 'savings', 'experts', 'experts']);
});

test('a stop signal ends the experiment after the arm it stopped', async () => {
  const dir = join(tmp(), 'stopped');
  const abort = new AbortController();
  let steps = 0;
  const data = tinyData();
  const original = data.sampler.bind(data);
  data.sampler = (split, options) => {
    const inner = original(split, options);
    return { next: () => (split === 'train' && ++steps === 4 && abort.abort(), inner.next()), state: () => inner.state() };
  };
  const result = await experiment([{ name: 'a', model: TINY_MODEL }, { name: 'b', model: TINY_MODEL }], data, {
    steps: 20,
    dir,
    trainer: TINY_TRAINER,
    evalBatches: 1,
    signal: abort.signal,
  });
  assert.equal(result.stopped, true);
  assert.deepEqual(result.runs.map((r) => [r.name, r.status, r.steps]), [['a', 'stopped', 4]]);
  assert.equal(existsSync(join(dir, 'b')), false);
  assert.deepEqual(result.comparisons, []);
});

test("the kernel's interrupt ends the experiment, saving and comparing what was trained, then rejects", async () => {
  const dir = join(tmp(), 'interrupted');
  const data = tinyData();
  let steps = 0;
  const error = await withKernelInterrupts((interrupt) => {
    const original = data.sampler.bind(data);
    data.sampler = (split, options) => {
      const inner = original(split, options);
      return { next: () => (split === 'train' && ++steps === 8 && interrupt(), inner.next()), state: () => inner.state() };
    };
    return experiment([{ name: 'a', model: TINY_MODEL }, { name: 'b', model: TINY_MODEL }, { name: 'c', model: TINY_MODEL }], data, {
      steps: 5,
      dir,
      trainer: TINY_TRAINER,
      evalBatches: 1,
      smoothing: 1,
    });
  }).then(() => assert.fail('experiment resolved'), (e: unknown) => e);
  assert.ok(error instanceof TrainingInterrupted, String(error));
  assert.match(error.message, /^b: stopped after 3 of 5 steps/);
  assert.deepEqual([loadRun(join(dir, 'a')).status, loadRun(join(dir, 'b')).status], ['done', 'stopped']);
  assert.equal(existsSync(join(dir, 'c')), false);
  const doc = JSON.parse(readFileSync(join(dir, 'experiment.mambalab.json'), 'utf8'));
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.runs.map((r: { id: string; status: string }) => [r.id, r.status]), [['a', 'done'], ['b', 'stopped']]);
  assert.equal(doc.comparisons.length, 1);
});

test('bad arms are refused before any training, naming the arm', async () => {
  const data = tinyData();
  const opts = { steps: 2, dir: join(tmp(), 'bad'), trainer: TINY_TRAINER };
  await assert.rejects(experiment([], data, opts), /non-empty array of arms/);
  await assert.rejects(experiment([{ name: 'a b', model: TINY_MODEL }], data, opts), /needs a name of letters, digits/);
  await assert.rejects(experiment([{ name: 'a', model: TINY_MODEL }, { name: 'a', model: TINY_MODEL }], data, opts), /two arms are named 'a'/);
  await assert.rejects(experiment([{ name: 'a', model: { ...TINY_MODEL, dModel: -4 } }], data, opts), /arm 'a': config.dModel: expected an integer/);
  await assert.rejects(experiment([{ name: 'a', model: TINY_MODEL, trainer: { seqLen: 8 } }], data, opts), /arm 'a' sets trainer.seqLen, but all arms share the batch order/);
  await assert.rejects(experiment([{ name: 'a', model: TINY_MODEL }], data, { ...opts, baseline: 'z' }), /baseline 'z' is not an arm \(arms: a\)/);
  assert.equal(existsSync(opts.dir), false);
});
