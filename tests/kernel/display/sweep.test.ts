// sweep(): configurations trained one after another on the same batches, on real C4 text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ema, type DisplayDoc } from '@mambalab/contract';

import { loadTextCorpus } from '../../../kernel/src/corpus/text.js';
import { toDisplayDoc } from '../../../kernel/src/display/show.js';
import { sweep, sweepTable, type SweepRow } from '../../../kernel/src/display/sweep.js';
import { textSummary } from '../../../kernel/src/display/text.js';
import { preset } from '../../../kernel/src/models/presets.js';
import { compareRuns } from '../../../kernel/src/train/compare.js';
import { loadRun } from '../../../kernel/src/train/runs.js';
import { recording } from '../../support/recording.js';
import { schemaErrors } from '../../support/schema.js';
import { C4_SAMPLE, scratchDir } from '../../helpers.js';

const c4 = loadTextCorpus(C4_SAMPLE);
const TRAINER = { batchSize: 2, seqLen: 32, lr: 3e-3, warmupSteps: 0 };

test('sweep trains every number of experts on the embedded C4 sample, on the same batches in the same order', async () => {
  const dir = join(scratchDir(), 'experts');
  const { source, batches } = recording(c4);
  const base = preset('moe-mamba', 'tiny').config;
  const result = await sweep({ base, vary: { numExperts: [1, 4, 8] } }, source, { steps: 6, dir, trainer: TRAINER, evalBatches: 1, smoothing: 0.5, expertsEvery: 3 });
  assert.deepEqual(result.runs.map((r) => [r.name, r.status, r.steps]), [['numExperts-1', 'done', 6], ['numExperts-4', 'done', 6], ['numExperts-8', 'done', 6]]);
  assert.deepEqual(result.runs.map((r) => r.config.model.numExperts), [1, 4, 8]);
  assert.deepEqual(result.runs.map((r) => r.config.model.expertHidden), [128, 128, 128], 'only the varied field differs');
  assert.equal(batches.length, 3);
  assert.equal(batches[0]!.length, 6);
  assert.deepEqual(batches[1], batches[0]);
  assert.deepEqual(batches[2], batches[0]);
  assert.deepEqual(result.points.map((p) => [p.name, p.values]), [['numExperts-1', { numExperts: 1 }], ['numExperts-4', { numExperts: 4 }], ['numExperts-8', { numExperts: 8 }]]);
  for (const p of result.points) {
    assert.ok(Number.isFinite(p.finalLoss) && p.finalLoss > 5 && p.finalLoss < 11.5, `${p.name}: final loss ${p.finalLoss}`);
    assert.equal(p.finalLoss, ema(p.run.train.step, p.run.train.loss, 0.5).at(-1));
  }
  assert.notEqual(result.points[0]!.finalLoss, result.points[2]!.finalLoss);
  // Each run routes to its own number of experts.
  assert.deepEqual(result.runs.map((r) => r.experts?.numExperts), [1, 4, 8]);
  // The runs are what compareRuns, show() and loadRun take.
  assert.deepEqual(result.comparisons.map((c) => [c.baseline, c.candidate]), [['numExperts-1', 'numExperts-4'], ['numExperts-1', 'numExperts-8']]);
  assert.deepEqual(compareRuns(result.runs[0]!, result.runs[2]!, { smoothing: 0.5 }), result.comparisons[1]);
  const doc = toDisplayDoc(result);
  assert.deepEqual(doc.runs.map((r) => r.id), ['numExperts-1', 'numExperts-4', 'numExperts-8']);
  assert.deepEqual(doc.plots.map((p) => p.kind), ['loss', 'final', 'savings', 'savings', 'experts', 'experts', 'experts']);
  // The final losses against the number of experts: show()'s final-loss plot, and the file beside the runs.
  assert.deepEqual(doc.finalLoss, {
    field: 'numExperts',
    smoothing: 0.5,
    points: result.points.map((p) => ({ runId: p.name, value: p.values.numExperts, loss: p.finalLoss })),
  });
  assert.deepEqual(result.finalLoss, doc.finalLoss);
  assert.match(textSummary(doc), /\n  final loss \(EMA α = 0\.5\) by numExperts: 1 → \d+\.\d{4} · 4 → \d+\.\d{4} · 8 → \d+\.\d{4}\n/);
  const file = JSON.parse(readFileSync(join(dir, 'sweep.mambalab.json'), 'utf8')) as DisplayDoc;
  assert.equal(schemaErrors(file), '');
  assert.deepEqual(file.finalLoss, doc.finalLoss);
  assert.equal(file.title, 'sweep over numExperts');
  assert.deepEqual(loadRun(join(dir, 'numExperts-8')).train.loss, result.runs[2]!.train.loss);
});

test('varied fields the model does not use change nothing: the same losses step for step', async () => {
  // A dense Mamba has no router, so its Sinkhorn settings are inert: only identical batches
  // in an identical order (and identical initial weights) give identical losses.
  const base = { ...preset('mamba', 'tiny').config, seed: 3 };
  const result = await sweep({ base, vary: { sinkhornMaxIter: [10, 20], sinkhornTol: [1e-3, 1e-2] } }, c4, { steps: 4, dir: join(scratchDir(), 'inert'), trainer: TRAINER, evalBatches: 1, smoothing: 1 });
  assert.deepEqual(result.runs.map((r) => r.name), ['sinkhornMaxIter-10_sinkhornTol-0.001', 'sinkhornMaxIter-10_sinkhornTol-0.01', 'sinkhornMaxIter-20_sinkhornTol-0.001', 'sinkhornMaxIter-20_sinkhornTol-0.01']);
  assert.equal(result.runs[0]!.train.loss.length, 4);
  for (const run of result.runs.slice(1)) assert.deepEqual(run.train.loss, result.runs[0]!.train.loss);
  // Two varied fields: the first on the final-loss plot's x-axis, a line per value of the other.
  const last = result.runs[0]!.train.loss.at(-1)!;
  assert.deepEqual(result.finalLoss.points.map((p) => [p.value, p.series, p.loss]), [
    [10, 'sinkhornTol=0.001', last],
    [10, 'sinkhornTol=0.01', last],
    [20, 'sinkhornTol=0.001', last],
    [20, 'sinkhornTol=0.01', last],
  ]);
});

test('sweepTable: a row per configuration with its values, status, step, smoothed loss and speed', () => {
  const row = (name: string, numExperts: number, status: SweepRow['status'], losses: number[], tokensPerS?: number): SweepRow => ({
    name, values: { numExperts }, status, step: losses.length, totalSteps: 4, steps: losses.map((_, i) => i + 1), losses, ...(tokensPerS ? { tokensPerS } : {}),
  });
  const table = sweepTable([row('numExperts-1', 1, 'done', [8, 6, 4, 2], 12_345), row('numExperts-8', 8, 'training', [9, 7], 2_000), row('numExperts-32', 32, 'waiting', [])], 1);
  assert.equal(table['text/plain'], [
    'sweep over numExperts: 1 of 3 configurations done',
    '  run            numExperts  status    step   loss (EMA α = 1)  tokens/s',
    '  numExperts-1   1           done      4 / 4  2.0000            12.3k',
    '  numExperts-8   8           training  2 / 4  7.0000            2k',
    '  numExperts-32  32          waiting   0 / 4  –                 –',
  ].join('\n'));
  assert.match(table['text/html'], /^<div class="mambalab-output"><p><b>sweep over numExperts: 1 of 3 configurations done<\/b><\/p><table><thead><tr><th>run<\/th><th>numExperts<\/th>/);
  assert.match(table['text/html'], /<tr><td>numExperts-8<\/td><td>8<\/td><td>training<\/td><td>2 \/ 4<\/td><td>7\.0000<\/td><td>2k<\/td><\/tr>/);
  // With α = 0.5 the loss shown is the debiased EMA, not the last value.
  assert.match(sweepTable([row('a', 1, 'done', [8, 4], 1)], 0.5)['text/plain'], /done\s+2 \/ 4\s+5\.3333/);
});
