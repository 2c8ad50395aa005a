// Training-step savings on synthetic loss curves whose answer is known in closed form.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { displayDocument } from '@mambalab/contract';

import { compareRuns, firstReach, PAPER_SMOOTHING, type LossCurves } from '../../../kernel/src/train/compare.js';
import { smoothedExponential } from '../../support/ema-closed-form.js';
import { schemaErrors } from '../../support/schema.js';

/** A run whose loss at step t (1..n) is f(t), with tokensPerStep tokens per step. */
function curve(id: string, n: number, f: (t: number) => number, tokensPerStep = 256): LossCurves {
  const step = Array.from({ length: n }, (_, i) => i + 1);
  return { id, train: { step, tokens: step.map((t) => t * tokensPerStep), loss: step.map(f) } };
}

function close(actual: number | null | undefined, expected: number, rel: number, what: string): void {
  assert.ok(typeof actual === 'number', `${what}: expected a number, got ${actual}`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} is not within ${rel} of ${expected}`);
}

test('linear decays: the candidate needs 1/2.5 of the steps at every loss level, exactly', () => {
  const baseline = curve('mamba', 100, (t) => 10 - 0.01 * t);
  const candidate = curve('moe', 100, (t) => 10 - 0.025 * t);
  const c = compareRuns(baseline, candidate, { smoothing: 1 });
  close(c.baselineFinalLoss, 9, 1e-12, 'baseline final loss');
  assert.equal(c.baselineAt, 100);
  close(c.candidateReachesAt, 40, 1e-9, 'candidate reaches the final loss at');
  close(c.ratio, 2.5, 1e-9, 'ratio');
  assert.equal(c.curve.loss.length, 50);
  c.curve.ratio.forEach((r, i) => close(r, 2.5, 1e-9, `curve ratio at loss ${c.curve.loss[i]}`));
  c.curve.loss.forEach((l, i) => close(c.curve.baselineAt[i], (10 - l) / 0.01, 1e-9, `baseline reaches ${l} at`));
  assert.equal(schemaErrors(displayDocument({ runs: [], comparisons: [c] })), '');
});

test('exponential decays at rates a and b: the ratio is b/a (2.2× fewer steps)', () => {
  const a = 0.01;
  const b = 0.022;
  const baseline = curve('mamba', 1000, (t) => 2 + 8 * Math.exp(-a * t));
  const candidate = curve('moe-mamba', 1000, (t) => 2 + 8 * Math.exp(-b * t));
  const c = compareRuns(baseline, candidate, { smoothing: 1 });
  close(c.candidateReachesAt, 1000 * (a / b), 1e-4, 'candidate reaches the final loss at');
  close(c.ratio, b / a, 1e-4, 'ratio');
  assert.ok(c.curve.ratio.length >= 45, `only ${c.curve.ratio.length} levels`);
  c.curve.ratio.forEach((r, i) => close(r, b / a, 2e-3, `curve ratio at loss ${c.curve.loss[i]}`));
});

test('on the tokens axis, a candidate with twice the batch saves half as much', () => {
  const baseline = curve('mamba', 1000, (t) => 2 + 8 * Math.exp(-0.01 * t), 256);
  const candidate = curve('big-batch', 1000, (t) => 2 + 8 * Math.exp(-0.022 * t), 512);
  const steps = compareRuns(baseline, candidate, { smoothing: 1 });
  const tokens = compareRuns(baseline, candidate, { smoothing: 1, axis: 'tokens' });
  assert.equal(tokens.axis, 'tokens');
  close(tokens.baselineAt, 256_000, 1e-12, 'baseline tokens');
  close(tokens.ratio, steps.ratio! / 2, 1e-9, 'tokens ratio');
});

test('smoothing is applied before the savings: EMA-lagged exponentials, solved in closed form', () => {
  const [alpha, rb, rc, n] = [0.05, Math.exp(-0.01), Math.exp(-0.03), 500];
  // The smoothed loss of 2 + 8 r^(t−1) at step t (the sequence index is t − 1).
  const smoothed = (r: number, t: number) => smoothedExponential(2, 8, r, alpha, t - 1);
  const target = smoothed(rb, n);
  let [lo, hi] = [1, n];
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (smoothed(rc, mid) > target) lo = mid;
    else hi = mid;
  }
  const expectedRatio = n / hi;
  const c = compareRuns(curve('b', n, (t) => 2 + 8 * rb ** (t - 1)), curve('c', n, (t) => 2 + 8 * rc ** (t - 1)), { smoothing: alpha });
  close(c.baselineFinalLoss, target, 1e-12, 'smoothed baseline final loss');
  close(c.ratio, expectedRatio, 1e-3, 'smoothed ratio');
  assert.ok(Math.abs(expectedRatio - 3) > 0.05, `the smoothed answer (${expectedRatio}) must differ from the raw one (3) for this test to mean anything`);
});

test("a candidate that never reaches the baseline's final loss has no ratio", () => {
  const c = compareRuns(curve('good', 50, (t) => 5 - 0.02 * t), curve('worse', 50, (t) => 5 - 0.01 * t), { smoothing: 1 });
  assert.equal(c.candidateReachesAt, null);
  assert.equal(c.ratio, null);
  c.curve.ratio.forEach((r) => assert.ok(r < 1, `ratio ${r} should show the candidate is slower`));
});

test('the default smoothing is the paper’s α = 0.001', () => {
  const c = compareRuns(curve('a', 10, (t) => 5 - t * 0.1), curve('b', 10, (t) => 5 - t * 0.2));
  assert.equal(c.smoothing, PAPER_SMOOTHING);
  assert.equal(PAPER_SMOOTHING, 0.001);
});

test('firstReach interpolates between the points around the level', () => {
  assert.equal(firstReach([1, 2, 3], [10, 8, 6], 7), 2.5);
  assert.equal(firstReach([1, 2, 3], [10, 8, 6], 11), 1);
  assert.equal(firstReach([1, 2, 3], [10, 8, 6], 5), null);
});

test('bad input names what is wrong', () => {
  const ok = curve('ok', 10, (t) => 5 - t * 0.1);
  assert.throws(() => compareRuns(ok, ok, { smoothing: 0 }), /smoothing must be an EMA weight in \(0, 1\].*got 0/);
  assert.throws(() => compareRuns(ok, ok, { smoothing: 1.5 }), /got 1.5/);
  assert.throws(() => compareRuns(ok, ok, { axis: 'flops' as 'step' }), /axis must be "step" or "tokens"/);
  assert.throws(() => compareRuns(ok, { id: 'empty', train: { step: [], tokens: [], loss: [] } }), /candidate 'empty' has no training steps/);
  assert.throws(() => compareRuns({ id: 'odd', train: { step: [1, 2], tokens: [1], loss: [3, 2] } }, ok), /baseline 'odd' has 2 steps, 1 token counts and 2 losses/);
  assert.throws(() => compareRuns(ok, { id: 'nan', train: { step: [1], tokens: [1], loss: [Number.NaN] } }), /non-finite loss \(NaN\) at step 1/);
});
