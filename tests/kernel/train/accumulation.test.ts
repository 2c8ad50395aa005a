// Gradient accumulation: K micro-batches per step give the update of one pass over the batch,
// and the trainer picks K from the GPU's memory when it is not told.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { resolveConfig, toNativeConfig, type ModelConfig } from '../../../kernel/src/models/config.js';
import { countParameters } from '../../../kernel/src/models/params.js';
import { preset } from '../../../kernel/src/models/presets.js';
import { native } from '../../../kernel/src/native.js';
import { chooseAccumulation } from '../../../kernel/src/train/accumulation.js';
import { TINY_MOE, tinyData, tinyTrainer } from '../../support/tiny.js';

function maxRelativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
  return worst;
}

/** Trains two tiny models alike but for gradAccumulation (1 and 4) and returns both. */
async function trainedTwice(config: Partial<ModelConfig>, steps: number) {
  const data = tinyData();
  const whole = tinyTrainer(config, { batchSize: 8, gradAccumulation: 1 });
  const split = tinyTrainer(config, { batchSize: 8, gradAccumulation: 4 });
  const a = await whole.trainer.fit(data, { steps, evalBatches: 1 });
  const b = await split.trainer.fit(data, { steps, evalBatches: 1 });
  const worst = Math.max(...whole.model.parameters().map((p) => maxRelativeDifference(split.model.getParameter(p.name), whole.model.getParameter(p.name))));
  return { a, b, worst };
}

// Routing that looks at each token alone: with a capacity, or the load-balancing loss, a
// switch router sees each micro-batch as its batch (as in any framework), so only these agree.
const PER_TOKEN_MOE: Partial<ModelConfig> = { ...TINY_MOE, capacityFactor: 'dropless', auxLossWeight: 0 };

test('a step in 4 micro-batches is the step on the whole batch: fp32 within 1e-6, float64 within 1e-12 over several steps', async () => {
  for (const config of [{}, PER_TOKEN_MOE]) {
    const once = await trainedTwice(config, 1);
    assert.ok(once.worst <= 1e-6, `fp32, one step: ${once.worst}`);
    assert.ok(Math.abs(once.b.history[0]!.loss - once.a.history[0]!.loss) <= 1e-6 * once.a.history[0]!.loss);
    // Adam divides by the gradients' size, so fp32 rounding in near-zero gradients grows over steps: float64 shows the sums agree.
    const { a, b, worst } = await trainedTwice({ ...config, dtype: 'float64' }, 3);
    assert.ok(worst <= 1e-12, `float64, three steps: ${worst}`);
    b.history.forEach((m, i) => {
      const w = a.history[i]!;
      assert.deepEqual([m.step, m.tokens, m.lr], [w.step, w.tokens, w.lr], 'steps, tokens and the schedule count optimizer steps');
      assert.ok(Math.abs(m.loss - w.loss) <= 1e-12 * w.loss, `loss ${m.loss} vs ${w.loss}`);
      assert.deepEqual(m.experts.map((l) => l.reduce((x, y) => x + y, 0)), w.experts.map((l) => l.reduce((x, y) => x + y, 0)), 'every token routed once');
    });
    assert.equal(b.history.at(-1)!.tokens, 3 * 8 * 16);
    assert.ok(Math.abs(b.finalEvalLoss - a.finalEvalLoss) <= 1e-12 * a.finalEvalLoss, 'evaluation runs in micro-batches too');
  }
});

test('with a capacity, the switch router fills each micro-batch: tokens are still counted once per step', async () => {
  const { a, b } = await trainedTwice(TINY_MOE, 2);
  b.history.forEach((m, i) => {
    const routed = (x: typeof m) => x.experts.map((l, j) => l.reduce((s, c) => s + c, 0) + x.dropped[j]!);
    assert.deepEqual(routed(m), routed(a.history[i]!), 'each layer routes every token of the step (kept or dropped)');
  });
});

test('gradAccumulation must divide the batch; on the CPU it defaults to one pass', () => {
  assert.throws(() => tinyTrainer({}, { batchSize: 8, gradAccumulation: 3 }), /trainer\.gradAccumulation: 3 micro-batches must divide the batch of 8 rows/);
  assert.throws(() => tinyTrainer({}, { gradAccumulation: 0 }), /trainer\.gradAccumulation: expected a positive integer, got 0/);
  const { trainer } = tinyTrainer({}, { batchSize: 8 });
  assert.deepEqual([trainer.options.gradAccumulation, trainer.accumulationNote], [1, undefined]);
});

test('the fewest micro-batches whose step the engine estimates to fit the GPU, and a note saying so', () => {
  // MoE-Mamba v1 at the paper's 256 × 256 in bf16, on GPUs of several sizes.
  const p = preset('moe-mamba', 'v1');
  const config = toNativeConfig(resolveConfig(p.config));
  const params = countParameters(p.config).total;
  const needs = (rows: number) => native().estimateTrainingMemory(config, params, rows, 256, 2).total;
  const GiB = 2 ** 30;
  assert.deepEqual(chooseAccumulation(256, 256, needs, 1000 * GiB), { microBatches: 1 });
  const small = chooseAccumulation(256, 256, needs, 16 * GiB);
  assert.ok(small.microBatches > 1 && 256 % small.microBatches === 0);
  assert.ok(needs(256 / small.microBatches) <= 0.9 * 16 * GiB, 'it fits');
  assert.ok(needs(256 / (small.microBatches / 2)) > 0.9 * 16 * GiB, 'half as many would not');
  assert.match(small.note!, new RegExp(`^batch 256 × 256 needs about \\d+\\.\\d GiB in one pass, more than this GPU's 16\\.0 GiB allows: accumulating gradients over ${small.microBatches} micro-batches of ${256 / small.microBatches} rows, the same update$`));
  assert.match(chooseAccumulation(256, 256, needs, GiB / 1024).note!, /over 256 micro-batches of 1 rows, the same update \(and even that may not fit\)$/);
});
