// A step's metrics as the run's log, the live display and the CLI's JSON lines hold them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TRAIN_COLUMNS } from '@mambalab/contract';

import { resolveConfig } from '../../../kernel/src/models/config.js';
import { MetricsLog, stepJsonLine, type StepMetrics } from '../../../kernel/src/train/metrics.js';
import { TINY_MODEL, TINY_MOE } from '../../support/tiny.js';

const dense = resolveConfig(TINY_MODEL);
const moe = resolveConfig(TINY_MOE);

function step(n: number, extra: Partial<StepMetrics> = {}): StepMetrics {
  return {
    step: n,
    loss: 10 - n,
    auxLoss: 0,
    experts: [],
    dropped: [],
    lr: 1e-3 * n,
    gradNorm: 0.5 * n,
    cudaGraph: false,
    tokens: 64 * n,
    tokensPerS: 1000 + n,
    elapsedS: 0.25 * n,
    skipped: false,
    nonfiniteSteps: 0,
    ...extra,
  };
}

test("the CLI's JSON line keeps its documented keys", () => {
  assert.deepEqual(stepJsonLine(step(3), 'cpu'), {
    step: 3, loss: 7, lr: 3e-3, grad_norm: 1.5, tokens: 192, tokens_per_s: 1003, device: 'cpu', skipped: false, nonfinite_steps: 0,
  });
  const routed = stepJsonLine(step(4, { auxLoss: 0.02, experts: [[10, 22], [16, 16]], dropped: [0, 3], evalLoss: 6.5 }), 'cuda');
  assert.deepEqual(Object.keys(routed), ['step', 'loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_s', 'device', 'skipped', 'nonfinite_steps', 'aux_loss', 'experts', 'dropped', 'eval_loss', 'eval_ppl']);
  assert.deepEqual([routed.aux_loss, routed.experts, routed.dropped, routed.eval_loss, routed.eval_ppl], [0.02, [[10, 22], [16, 16]], [0, 3], 6.5, Math.exp(6.5)]);
  const bad = stepJsonLine(step(5, { loss: Number.NaN, skipped: true, nonfiniteSteps: 2 }), 'cpu');
  assert.equal(JSON.stringify(bad).includes('"loss":null,'), true, 'NaN is null in JSON');
  assert.deepEqual([bad.skipped, bad.nonfinite_steps], [true, 2]);
  assert.equal(stepJsonLine(step(6, { lossSpike: 3.5 }), 'cpu').loss_spike, 3.5);
});

test('a step becomes a row of every training column, its wall time from elapsedS', () => {
  const log = new MetricsLog('run a', dense);
  log.append(step(1));
  log.append(step(2));
  assert.deepEqual(Object.keys(log.train), [...TRAIN_COLUMNS]);
  assert.deepEqual(log.train, {
    step: [1, 2],
    tokens: [64, 128],
    wallS: [0.25, 0.5],
    loss: [9, 8],
    lr: [1e-3, 2e-3],
    gradNorm: [0.5, 1],
    tokensPerS: [1001, 1002],
    skipped: [0, 0],
  });
  assert.deepEqual([log.steps, log.tokens, log.finalLoss], [2, 128, 8]);
  assert.throws(() => log.append(step(2)), /run a: step 2 recorded after step 2/);
});

test('evaluated steps add validation points, kept in step order', () => {
  const log = new MetricsLog('run a', dense);
  log.append(step(1, { evalLoss: 8.5 }));
  log.append(step(2));
  log.recordValidation({ step: 0, tokens: 0, wallS: 0, loss: 10.9 });
  assert.deepEqual(log.validation, { step: [0, 1], tokens: [0, 64], wallS: [0, 0.25], loss: [10.9, 8.5] });
});

test('tokens per expert only at the steps asked for, with the MoE layers of the pattern', () => {
  const log = new MetricsLog('run moe', moe);
  const routed = (n: number) => step(n, { experts: [[10, 22, 0, 0], [8, 8, 8, 8]], dropped: [0, 0] });
  log.append(routed(1));
  assert.equal(log.experts, undefined);
  log.append(routed(2), { experts: true });
  log.append(routed(3), { experts: true });
  assert.deepEqual(log.experts, { layers: [1, 3], numExperts: 4, step: [2, 3], counts: [[[10, 22, 0, 0], [8, 8, 8, 8]], [[10, 22, 0, 0], [8, 8, 8, 8]]], dropped: [[0, 0], [0, 0]] });
  const withoutMoe = new MetricsLog('run dense', dense);
  withoutMoe.append(step(1), { experts: true });
  assert.equal(withoutMoe.experts, undefined, 'a model without MoE layers records none');
});

test('truncate forgets the later steps; toSeries copies what a document needs', () => {
  const log = new MetricsLog('run moe', moe);
  for (let n = 1; n <= 4; n++) log.append(step(n, { experts: [[1, 1, 1, 1], [2, 2, 0, 0]], dropped: [0, 0], ...(n % 2 === 0 ? { evalLoss: 9 - n } : {}) }), { experts: n % 2 === 1 });
  log.truncate(2);
  assert.deepEqual([log.train.step, log.validation.step, log.experts?.step], [[1, 2], [2], [1]]);

  const series = log.toSeries();
  const { skipped, ...rest } = log.train;
  assert.deepEqual(series.train, rest, 'no skipped column while no step was skipped');
  assert.deepEqual(skipped, [0, 0]);
  log.append(step(3, { skipped: true, nonfiniteSteps: 1 }));
  assert.deepEqual(log.toSeries().train.skipped, [0, 0, 1]);
  assert.notEqual(series.train.step, log.train.step, 'a copy: the log goes on');
  assert.deepEqual(Object.keys(new MetricsLog('empty', dense).toSeries()), ['train'], 'no validation or experts before there are any');
});

test('a log read from a run older than the skipped column says no step was skipped', () => {
  const { skipped: _, ...older } = (() => {
    const log = new MetricsLog('new', dense);
    log.append(step(1));
    log.append(step(2));
    return log.train;
  })();
  const log = new MetricsLog('old', dense, { train: older });
  assert.deepEqual(log.train.skipped, [0, 0]);
});
