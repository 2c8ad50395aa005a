// Expert balance: shares, max/mean, CV and the dropped fraction of each MoE layer.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expertBalance, layerBalance, shares } from '../../contract/src/balance.js';
import { TWO_LAYERS } from '../support/expert-counts.js';

const close = (a: number | null, b: number, eps = 1e-12): void => assert.ok(a !== null && Math.abs(a - b) < eps, `${a} vs ${b}`);

test('shares sum to one and keep proportions', () => {
  assert.deepEqual(shares([1, 3, 0, 4]), [0.125, 0.375, 0, 0.5]);
  assert.deepEqual(shares([0, 0]), [0, 0]);
});

test('perfectly balanced: max/mean 1, CV 0', () => {
  assert.deepEqual(layerBalance([5, 5, 5, 5]), { tokens: 20, maxOverMean: 1, cv: 0, droppedFraction: null });
});

test('all tokens to one expert: max/mean E, CV sqrt(E − 1)', () => {
  const b = layerBalance([0, 0, 0, 0, 0, 0, 0, 800]);
  close(b.maxOverMean, 8);
  close(b.cv, Math.sqrt(7));
});

test('a worked example, with dropped assignments', () => {
  // counts 1, 2, 3, 6: mean 3, max 6, population variance (4 + 1 + 0 + 9) / 4 = 3.5; 4 dropped of 16
  const b = layerBalance([1, 2, 3, 6], 4);
  close(b.maxOverMean, 2);
  close(b.cv, Math.sqrt(3.5) / 3);
  assert.equal(b.tokens, 16);
  close(b.droppedFraction, 0.25);
});

test('no tokens processed: no balance rather than NaN; all dropped is still a fraction', () => {
  assert.deepEqual(layerBalance([0, 0, 0]), { tokens: 0, maxOverMean: null, cv: null, droppedFraction: null });
  assert.deepEqual(layerBalance([]), { tokens: 0, maxOverMean: null, cv: null, droppedFraction: null });
  assert.deepEqual(layerBalance([0, 0], 6), { tokens: 6, maxOverMean: null, cv: null, droppedFraction: 1 });
});

test('every layer at every recorded step, indexed as the counts are', () => {
  const balance = expertBalance(TWO_LAYERS);
  assert.deepEqual(balance.tokens, [[48, 40], [43, 0]]);
  assert.deepEqual(balance.maxOverMean, [[1.5, 1], [1.25, null]]);
  assert.deepEqual(balance.cv, [[0.5, 0], [0.25, null]]);
  assert.deepEqual(balance.droppedFraction, [[8 / 48, 0], [3 / 43, null]]);
});

test('without dropped counts, or with a null one from JSON, there is no dropped fraction', () => {
  const counts = [[[1, 3]]];
  assert.deepEqual(expertBalance({ layers: [0], numExperts: 2, step: [0], counts }).droppedFraction, [[null]]);
  const fromJson = JSON.parse(JSON.stringify({ layers: [0], numExperts: 2, step: [0], counts, dropped: [[Number.NaN]] }));
  assert.deepEqual(expertBalance(fromJson), { tokens: [[4]], maxOverMean: [[1.5]], cv: [[0.5]], droppedFraction: [[null]] });
});
