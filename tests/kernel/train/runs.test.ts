// Runs on disk (run.json, Arrow metrics, checkpoint, run.mambalab.json) and trainRun.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';

import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { expertBalance, MAMBALAB_MIME } from '@mambalab/contract';

import { InMemoryTokens, type BatchSampler, type TokenSource } from '../../../kernel/src/data/source.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { loadRun, Run } from '../../../kernel/src/train/runs.js';
import { resumeRun, trainRun } from '../../../kernel/src/train/train-run.js';
import { Trainer, TrainingInterrupted } from '../../../kernel/src/train/trainer.js';
import { withKernelInterrupts } from '../../support/interrupt.js';
import { schemaErrors } from '../../support/schema.js';
import { TINY_MOE, tinyData, tinyTrainer } from '../../support/tiny.js';
import { trainingFlopsPerToken } from '../../../kernel/src/models/flops.js';
import { scratchDir } from '../../helpers.js';

const tmp = () => scratchDir('mambalab-runs-');

test('trainRun records every step, the validation curve and a checkpoint, and loadRun reads them back', async () => {
  const dir = join(tmp(), 'first');
  const { trainer } = tinyTrainer();
  const run = await trainRun(trainer, tinyData(), { steps: 12, dir, evalEvery: 4, evalBatches: 1 });
  assert.equal(run.status, 'done');
  assert.equal(run.id, 'first');
  assert.deepEqual(run.train.step, Array.from({ length: 12 }, (_, i) => i + 1));
  assert.deepEqual(run.validation.step, [0, 4, 8, 12]);
  assert.equal(run.checkpointStep, 12);
  assert.ok(existsSync(join(dir, 'checkpoint', 'model.safetensors')));

  const loaded = loadRun(dir);
  assert.equal(loaded.status, 'done');
  assert.deepEqual(loaded.train, run.train);
  assert.deepEqual(loaded.validation, run.validation);
  assert.deepEqual(loaded.config.model, trainer.model.config);
  assert.equal(loaded.config.trainer.batchSize, 2);
  assert.equal(loaded.model.paramsActive, trainer.model.parameterCount().nonEmbedding);

  // The metrics file is plain Arrow IPC, with the loss of each step.
  const table = tableFromIPC(readFileSync(join(dir, 'metrics.arrow')));
  assert.equal(table.numRows, 12);
  assert.deepEqual(Array.from(table.getChild('loss')!.toArray() as Float64Array), run.train.loss);

  const doc = JSON.parse(readFileSync(join(dir, 'run.mambalab.json'), 'utf8'));
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.runs[0].train.loss, run.train.loss);
  assert.match(inspect(run), /^Run first \[done\] 12 steps, loss \d+\.\d{3}/);
  assert.ok(MAMBALAB_MIME.startsWith('application/vnd.mambalab.v1'));
});

test('an MoE run records tokens per expert every few steps, with its active parameters and FLOPs per token', async () => {
  const dir = join(tmp(), 'moe');
  const { model, trainer } = tinyTrainer(TINY_MOE);
  const run = await trainRun(trainer, tinyData(), { steps: 5, dir, evalBatches: 1, expertsEvery: 2 });
  const e = run.experts!;
  assert.deepEqual([e.layers, e.numExperts, e.step], [[1, 3], 4, [2, 4, 5]]);
  const routed = 2 * 16; // batchSize × seqLen tokens, top-1: each goes to one expert or is dropped
  e.counts.forEach((layers, i) => layers.forEach((c, l) => assert.equal(c.reduce((a, b) => a + b, 0) + e.dropped![i]![l]!, routed)));

  const loaded = loadRun(dir);
  assert.deepEqual(loaded.experts, e);
  const table = tableFromIPC(readFileSync(join(dir, 'experts.arrow')));
  assert.deepEqual(table.schema.fields.map((f) => f.name), ['step', 'layer', 'dropped', 'expert_0', 'expert_1', 'expert_2', 'expert_3']);
  assert.equal(table.numRows, 3 * 2);

  const doc = JSON.parse(readFileSync(join(dir, 'run.mambalab.json'), 'utf8'));
  assert.equal(schemaErrors(doc), '');
  assert.deepEqual(doc.plots.map((p: { kind: string }) => p.kind), ['loss', 'experts']);
  assert.deepEqual(doc.runs[0].experts.balance, expertBalance(e), 'the file carries the balance for the extension to draw');
  const counts = model.parameterCount();
  assert.deepEqual([doc.runs[0].model.paramsTotal, doc.runs[0].model.paramsActive], [counts.nonEmbedding, counts.active]);
  assert.ok(counts.active < counts.nonEmbedding);
  assert.equal(doc.runs[0].flopsPerToken, trainingFlopsPerToken(model.config, trainer.options.seqLen));

  loaded.truncate(3);
  assert.deepEqual(loaded.experts!.step, [2]);
});

test('the same trainer continues its run; a fresh trainer starts the directory over', async () => {
  const dir = join(tmp(), 'continued');
  const data = tinyData();
  const { trainer } = tinyTrainer();
  await trainRun(trainer, data, { steps: 5, dir, evalBatches: 1 });
  const run = await trainRun(trainer, data, { steps: 3, dir, evalBatches: 1 });
  assert.deepEqual(run.train.step, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(loadRun(dir).train.step, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(run.validation.step, [0, 5, 8]);

  const fresh = await trainRun(tinyTrainer().trainer, data, { steps: 2, dir, evalBatches: 1 });
  assert.deepEqual(fresh.train.step, [1, 2]);
  assert.equal(loadRun(dir).checkpointStep, 2);
});

test('a trainer resumed from an earlier checkpoint continues the run from there, dropping the later steps', async () => {
  const root = tmp();
  const dir = join(root, 'resumed');
  const data = tinyData();
  const { trainer } = tinyTrainer();
  await trainRun(trainer, data, { steps: 2, dir, evalBatches: 1 });
  trainer.saveCheckpoint(join(root, 'at-step-2'));
  const before = await trainRun(trainer, data, { steps: 3, dir, evalBatches: 1 });
  assert.equal(before.steps, 5);

  const back = tinyTrainer().trainer;
  back.loadCheckpoint(join(root, 'at-step-2'));
  const run = await trainRun(back, data, { steps: 2, dir, evalBatches: 1 });
  assert.deepEqual(run.train.step, [1, 2, 3, 4]);
  assert.deepEqual(run.train.loss.slice(0, 2), before.train.loss.slice(0, 2));
  // Same weights, optimizer state and batch order: the resumed steps repeat the originals.
  assert.deepEqual(run.train.loss.slice(2), before.train.loss.slice(2, 4));
  assert.deepEqual(run.validation.step, [0, 2, 4]);
  assert.equal(loadRun(dir).checkpointStep, 4);
});

test('a trainer ahead of the run in dir, or of another model, is refused', async () => {
  const dir = join(tmp(), 'mismatch');
  const data = tinyData();
  const { trainer } = tinyTrainer();
  await trainRun(trainer, data, { steps: 2, dir, evalBatches: 1 });
  const other = tinyTrainer().trainer;
  await other.fit(data, { steps: 3, evalBatches: 1 });
  await assert.rejects(trainRun(other, data, { steps: 1, dir }), /holds a run that ends at step 2, but this trainer is at step 3/);
  const wider = tinyTrainer({ dModel: 24 }).trainer;
  await wider.fit(data, { steps: 1, evalBatches: 1 });
  await assert.rejects(trainRun(wider, data, { steps: 1, dir }), /holds a run of another model config/);
});

test('a signal stops the run at a step boundary with its checkpoint', async () => {
  const dir = join(tmp(), 'stopped');
  const { trainer } = tinyTrainer();
  const abort = new AbortController();
  const run = await trainRun(trainer, tinyData(), {
    steps: 50,
    dir,
    evalBatches: 1,
    signal: abort.signal,
    onStep: (m) => m.step === 3 && abort.abort(),
  });
  assert.equal(run.status, 'stopped');
  assert.equal(run.steps, 3);
  assert.equal(run.checkpointStep, 3);
  assert.equal(loadRun(dir).status, 'stopped');
  const resumed = tinyTrainer().trainer;
  resumed.loadCheckpoint(run.checkpointDir);
  assert.equal(resumed.stepCount, 3);
});

test("the kernel's interrupt saves the stopped run with its checkpoint, then rejects", async () => {
  const dir = join(tmp(), 'paused');
  const { trainer } = tinyTrainer();
  const error = await withKernelInterrupts((interrupt) =>
    trainRun(trainer, tinyData(), { steps: 50, dir, evalBatches: 1, onStep: (m) => m.step === 3 && interrupt() }),
  ).then(() => assert.fail('trainRun resolved'), (e: unknown) => e);
  assert.ok(error instanceof TrainingInterrupted);
  assert.match(error.message, /^paused: stopped after 3 of 50 steps \(at step 3\); the run and its checkpoint are saved in .*paused$/);
  const run = loadRun(dir);
  assert.deepEqual([run.status, run.steps, run.checkpointStep, trainer.stepCount], ['stopped', 3, 3, 3]);
  assert.deepEqual(run.validation.step, [0], 'the loss before training is the first validation point');
});

/** The tiny data, with a train sampler that fails on its n-th batch (a read error mid-run). */
function failingOn(n: number, data: TokenSource): TokenSource {
  return {
    description: 'flaky',
    vocabSize: data.vocabSize,
    stats: (split) => data.stats(split),
    sampler(split, options): BatchSampler {
      const inner = data.sampler(split, options);
      let batches = 0;
      return {
        next: () => {
          if (split === 'train' && ++batches === n) throw new Error('disk read failed');
          return inner.next();
        },
        state: () => inner.state(),
      };
    },
  };
}

test('an error during training marks the run failed, keeping its steps and last checkpoint', async () => {
  const dir = join(tmp(), 'failed');
  const { trainer } = tinyTrainer();
  await trainRun(trainer, tinyData(), { steps: 2, dir, evalBatches: 1 });
  await assert.rejects(trainRun(trainer, failingOn(3, tinyData()), { steps: 10, dir, evalBatches: 1 }), /disk read failed/);
  const run = loadRun(dir);
  assert.equal(run.status, 'failed');
  assert.equal(run.error, 'disk read failed');
  assert.equal(run.steps, 4, 'two steps before, two in the failed fit');
  assert.equal(trainer.stepCount, 4, 'the trainer stays at its last completed step');
  assert.equal(run.checkpointStep, 2, 'the checkpoint from before the failure is kept');
  assert.equal(schemaErrors(JSON.parse(readFileSync(join(dir, 'run.mambalab.json'), 'utf8'))), '');
});

test('bad arguments are refused before anything is written', async () => {
  const { trainer } = tinyTrainer();
  const dir = join(tmp(), 'never');
  await assert.rejects(trainRun(trainer, tinyData(), { steps: 0, dir }), /steps must be a positive integer, got 0/);
  await assert.rejects(trainRun(trainer, tinyData(), { steps: 2, dir, checkpointEvery: -1 }), /checkpointEvery must be a non-negative integer/);
  assert.equal(existsSync(dir), false);
  assert.throws(() => loadRun(dir), /is not a run \(it has no run.json\)/);
  assert.ok(trainer instanceof Trainer);
});

test('Run.record refuses steps out of order; validation points stay sorted', () => {
  const { model, trainer } = tinyTrainer();
  const run = Run.create(join(tmp(), 'manual'), { model, trainer: trainer.options });
  const m = { step: 2, loss: 5, auxLoss: 0, experts: [], dropped: [], lr: 1e-3, gradNorm: 1, cudaGraph: false, tokens: 64, tokensPerS: 100, elapsedS: 0.5, skipped: false, nonfiniteSteps: 0 };
  run.record(m);
  assert.throws(() => run.record({ ...m, step: 2 }), /step 2 recorded after step 2/);
  run.recordValidation({ step: 2, tokens: 64, wallS: 0.5, loss: 4 });
  run.recordValidation({ step: 0, tokens: 0, wallS: 0, loss: 6 });
  run.recordValidation({ step: 2, tokens: 64, wallS: 0.5, loss: 3.5 });
  assert.deepEqual(run.validation.step, [0, 2]);
  assert.deepEqual(run.validation.loss, [6, 3.5]);
});

/** A run's history without what the wall clock decides (wall time, tokens per second). */
function historyOf(run: Run) {
  const { wallS: _w, tokensPerS: _t, ...train } = run.train;
  const { wallS: _v, ...validation } = run.validation;
  return { train, validation, experts: run.experts };
}

test('resumeRun continues a crashed run from its newest checkpoint: the same history and weights as an uninterrupted run', async () => {
  const root = tmp();
  const data = tinyData();
  const options = { steps: 10, evalEvery: 4, evalBatches: 1, checkpointEvery: 3, expertsEvery: 2 };
  const straight = await trainRun(tinyTrainer(TINY_MOE).trainer, data, { ...options, dir: join(root, 'straight') });

  const dir = join(root, 'crashed');
  const crashing = tinyTrainer(TINY_MOE).trainer;
  await assert.rejects(trainRun(crashing, data, { ...options, dir, onStep: (m) => { if (m.step === 8) throw new Error('power cut'); } }), /power cut/);
  assert.deepEqual([loadRun(dir).steps, loadRun(dir).checkpointStep], [8, 6]);

  let from: number | undefined;
  const resumed = await resumeRun(dir, data, { onResume: (c) => (from = c?.step) });
  assert.equal(from, 6);
  assert.deepEqual([resumed.status, resumed.steps, resumed.checkpointStep], ['done', 10, 10]);
  assert.deepEqual(historyOf(resumed), historyOf(straight));
  assert.deepEqual(historyOf(loadRun(dir)), historyOf(straight), 'and so on disk');
  const weights = (d: string) => readFileSync(join(d, 'checkpoint', 'model.safetensors'));
  assert.deepEqual(weights(dir), weights(join(root, 'straight')), 'the final weights, bit for bit');
  const state = (d: string) => {
    const { elapsedS: _, ...rest } = JSON.parse(readFileSync(join(d, 'checkpoint', 'trainer.json'), 'utf8'));
    return rest;
  };
  assert.deepEqual(state(dir), state(join(root, 'straight')));

  const again = await resumeRun(dir, data);
  assert.deepEqual([again.status, again.steps], ['done', 10], 'a finished run has nothing left to do');
});

test('resumeRun refuses other data and directories that are not resumable runs, saying why', async () => {
  const dir = join(tmp(), 'planned');
  const data = tinyData();
  await trainRun(tinyTrainer().trainer, data, { steps: 2, dir, evalBatches: 1 });
  const other = new InMemoryTokens('other tokens', 256, { train: { tokens: new Uint16Array(100), documents: 1 }, validation: { tokens: new Uint16Array(100), documents: 1 } });
  await assert.rejects(resumeRun(dir, other), /resumeRun: .*planned was trained on other data: data: "tiny synthetic" in the run, "other tokens" now/);
  await assert.rejects(resumeRun(join(tmp(), 'nothing'), data), /is not a run \(it has no run\.json\)/);
  const record = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  delete record.plan;
  writeFileSync(join(dir, 'run.json'), JSON.stringify(record));
  await assert.rejects(resumeRun(dir, data), /was written before runs could be resumed \(its run\.json has no plan\)/);
});

test('a damaged metrics.arrow is named by loadRun, never read endlessly', () => {
  const { model, trainer } = tinyTrainer();
  const dir = join(tmp(), 'damaged');
  const run = Run.create(dir, { model, trainer: trainer.options });
  run.record({ step: 1, loss: 5, auxLoss: 0, experts: [], dropped: [], lr: 1e-3, gradNorm: 1, cudaGraph: false, skipped: false, nonfiniteSteps: 0, tokens: 64, tokensPerS: 100, elapsedS: 0.5 });
  run.save();
  const metrics = join(dir, 'metrics.arrow');
  const damaged = readFileSync(metrics);
  damaged.writeUInt32LE(0xffffffff, 12); // the footer's record batch now reads as another kind of message
  writeFileSync(metrics, damaged);
  assert.throws(() => loadRun(dir), (e: unknown) => e instanceof MambalabError && e.message.startsWith(`loadRun: ${metrics} is not an Arrow IPC file`));
});

test('loadRun refuses damaged logs and run.json of the wrong shape, naming the file and what is wrong', async () => {
  const source = join(tmp(), 'moe');
  const { trainer } = tinyTrainer(TINY_MOE);
  await trainRun(trainer, tinyData(), { steps: 4, dir: source, evalEvery: 2, evalBatches: 1, expertsEvery: 2 });
  const damaged = (file: string, edit: (path: string) => void, message: RegExp) => {
    const dir = join(tmp(), 'copy');
    cpSync(source, dir, { recursive: true });
    const path = join(dir, file);
    edit(path);
    assert.throws(() => loadRun(dir), (e: unknown) => e instanceof MambalabError && e.message.includes(path) && message.test(e.message), message.source);
  };
  const rewrite = (path: string, change: (columns: Record<string, unknown[]>) => void) => {
    const table = tableFromIPC(readFileSync(path));
    const columns = Object.fromEntries(table.schema.fields.map((f) => [f.name, Array.from(table.getChild(f.name)!.toArray() as ArrayLike<number>)])) as Record<string, unknown[]>;
    change(columns);
    const typed = Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, typeof v[0] === 'string' ? v : Float64Array.from(v as number[])]));
    writeFileSync(path, tableToIPC(tableFromArrays(typed as Record<string, Float64Array>), 'file'));
  };
  // Before: an endless loop (no layers to step through).
  damaged('experts.arrow', (p) => rewrite(p, (c) => delete c['layer']), /has no column 'layer'/);
  damaged('experts.arrow', (p) => rewrite(p, (c) => (c['expert_1']![2] = -3)), /row 2 has expert_1 -3: the file is damaged/);
  damaged('experts.arrow', (p) => rewrite(p, (c) => (c['layer']![1] = 1)), /row 1 is step 2, layer 1, where step 2, layer 3 belongs/);
  damaged('experts.arrow', (p) => rewrite(p, (c) => delete c['expert_3']), /has 3 expert columns, but the run's model has 2 MoE layers of 4 experts/);
  damaged('metrics.arrow', (p) => rewrite(p, (c) => (c['step']![2] = 2)), /row 2 has step 2 after step 2/);
  damaged('metrics.arrow', (p) => rewrite(p, (c) => (c['loss'] = c['loss']!.map(String))), /column 'loss' holds .*Utf8.*, not numbers/);
  damaged('validation.arrow', (p) => rewrite(p, (c) => (c['tokens']![1] = Number.NaN)), /row 1 has tokens NaN/);
  const record = (change: (r: { config: { model?: { pattern?: string }; trainer?: { seqLen?: number } }; status?: string; model?: unknown }) => void) => (path: string) => {
    const r = JSON.parse(readFileSync(path, 'utf8'));
    change(r);
    writeFileSync(path, JSON.stringify(r));
  };
  damaged('run.json', record((r) => delete r.config.model), /config\.model is undefined, expected an object/);
  damaged('run.json', record((r) => (r.config.model!.pattern = 'MX')), /its model's pattern: unknown layer 'X'/);
  damaged('run.json', record((r) => (r.status = 'lost')), /status is "lost", expected one of running, done, stopped, failed/);
  damaged('run.json', record((r) => (r.model = [])), /model is \[\], expected an object/);
  damaged('run.json', record((r) => delete r.config.trainer!.seqLen), /config\.trainer\.seqLen is undefined, expected a non-negative integer/);
});
