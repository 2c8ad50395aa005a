// ema(): the smoothing that the kernel measures savings on and the lab extension draws.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ema } from '../../contract/src/ema.js';
import { smoothedExponential } from '../support/ema-closed-form.js';

test('alpha 0 returns the raw values', () => {
  assert.deepEqual(ema([0, 1, 2], [3, 1, 2], 0), [3, 1, 2]);
});

test('the first smoothed value is the first value (debiased, no ramp from zero)', () => {
  assert.equal(ema([0, 1], [5, 7], 0.001)[0], 5);
});

test('its closed form on an exponential sequence; alpha 1 is the raw values', () => {
  const [c, A, r, alpha] = [3, 5, 0.97, 0.05];
  const xs = Array.from({ length: 300 }, (_, n) => c + A * r ** n);
  const steps = xs.map((_, n) => n + 1);
  ema(steps, xs, alpha).forEach((value, n) => {
    const expected = smoothedExponential(c, A, r, alpha, n);
    assert.ok(Math.abs(value - expected) <= 1e-12 * expected, `s_${n}: ${value} vs ${expected}`);
  });
  assert.deepEqual(ema(steps, xs, 1), xs);
});

test('a constant series stays constant', () => {
  for (const value of ema([0, 10, 20, 30, 1000], [4, 4, 4, 4, 4], 0.01)) assert.ok(Math.abs(value - 4) < 1e-12);
});

test('every step logged: the classic debiased EMA', () => {
  const alpha = 0.1;
  const values = [1, 2, 3, 4];
  let mean = 0;
  let weight = 0;
  const expected = values.map((v) => {
    mean = (1 - alpha) * mean + alpha * v;
    weight = (1 - alpha) * weight + alpha;
    return mean / weight;
  });
  const got = ema([0, 1, 2, 3], values, alpha);
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12, `${v} vs ${expected[i]}`));
});

test('logging every k steps gives the same curve as logging every step of a piecewise constant series', () => {
  // Each logged value held for k steps: smoothing the full series and the logged one must agree
  // at the logged points, since alpha is per training step.
  const k = 10;
  const logged = [5, 4, 3.5, 3.2, 3.1];
  const steps = logged.map((_, i) => i * k);
  const fullSteps: number[] = [];
  const full: number[] = [];
  logged.forEach((v, i) => {
    const from = i === 0 ? 0 : steps[i - 1]! + 1;
    for (let s = from; s <= steps[i]!; s++) {
      fullSteps.push(s);
      full.push(v);
    }
  });
  const smoothFull = ema(fullSteps, full, 0.05);
  const smoothLogged = ema(steps, logged, 0.05);
  steps.forEach((s, i) => assert.ok(Math.abs(smoothLogged[i]! - smoothFull[s]!) < 1e-9, `step ${s}: ${smoothLogged[i]} vs ${smoothFull[s]}`));
});

test('non-finite values are skipped, not propagated', () => {
  const out = ema([0, 1, 2, 3], [Number.NaN, 2, Number.POSITIVE_INFINITY, 2], 0.5);
  assert.ok(Number.isNaN(out[0]!));
  assert.deepEqual(out.slice(1), [2, 2, 2]);
});
