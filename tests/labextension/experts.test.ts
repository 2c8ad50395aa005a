import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balance, routingAt, shares } from '../../labextension/src/experts.js';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('shares sum to one and keep proportions', () => {
  const s = shares([1, 3, 0, 4]);
  assert.deepEqual(s, [0.125, 0.375, 0, 0.5]);
  assert.deepEqual(shares([0, 0]), [0, 0]);
});

test('perfectly balanced: max/mean 1, CV 0', () => {
  assert.deepEqual(balance([5, 5, 5, 5]), { maxOverMean: 1, cv: 0 });
});

test('all tokens to one expert: max/mean E, CV sqrt(E − 1)', () => {
  const metrics = balance([0, 0, 0, 0, 0, 0, 0, 800])!;
  close(metrics.maxOverMean, 8);
  close(metrics.cv, Math.sqrt(7));
});

test('a worked example', () => {
  // counts 1, 2, 3, 6: mean 3, max 6, population variance (4 + 1 + 0 + 9) / 4 = 3.5
  const metrics = balance([1, 2, 3, 6])!;
  close(metrics.maxOverMean, 2);
  close(metrics.cv, Math.sqrt(3.5) / 3);
});

test('no tokens: no metrics rather than NaN', () => {
  assert.equal(balance([0, 0, 0]), null);
  assert.equal(balance([]), null);
});

test('routing at a step: per layer tokens, shares, balance and dropped fraction', () => {
  const experts = {
    layers: [1, 3],
    numExperts: 2,
    step: [0, 100],
    counts: [
      [[10, 30], [20, 20]],
      [[25, 15], [0, 0]],
    ],
    dropped: [
      [8, 0],
      [3, 0],
    ],
  };
  const first = routingAt(experts, 0);
  assert.equal(first[0]!.layer, 1);
  assert.equal(first[0]!.tokens, 48, '40 processed + 8 dropped');
  assert.deepEqual(first[0]!.shares, [0.25, 0.75]);
  close(first[0]!.maxOverMean!, 1.5);
  close(first[0]!.droppedFraction!, 8 / 48);
  assert.equal(first[1]!.maxOverMean, 1);
  const second = routingAt(experts, 1);
  assert.equal(second[1]!.maxOverMean, null);
  assert.equal(second[1]!.droppedFraction, null, 'no tokens: no fraction');
});

test('without dropped counts the dropped columns are empty', () => {
  const [row] = routingAt({ layers: [0], numExperts: 2, step: [0], counts: [[[1, 1]]] }, 0);
  assert.equal(row!.dropped, null);
  assert.equal(row!.droppedFraction, null);
});
