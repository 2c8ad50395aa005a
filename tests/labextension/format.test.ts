import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCount, formatDuration, formatInteger, formatLoss, formatPercent, formatSavings } from '../../labextension/src/format.js';

test('counts read with SI-like suffixes', () => {
  assert.equal(formatCount(6_553_600_000), '6.55B');
  assert.equal(formatCount(211_000), '211k');
  assert.equal(formatCount(1_500_000), '1.5M');
  assert.equal(formatCount(950), '950');
  assert.equal(formatCount(0.5), '0.5');
  assert.equal(formatCount(Number.NaN), '–');
});

test('integers, losses, percents', () => {
  assert.equal(formatInteger(46_400), '46,400');
  assert.equal(formatLoss(3.41), '3.4100');
  assert.equal(formatPercent(0.034), '3.4%');
});

test('durations', () => {
  assert.equal(formatDuration(12.5), '12.5s');
  assert.equal(formatDuration(245), '4m 05s');
  assert.equal(formatDuration(3 * 3600 + 125), '3h 02m');
});

test('savings read as the paper says them', () => {
  assert.equal(formatSavings(2.155, 'steps'), '2.2× fewer steps');
  assert.equal(formatSavings(1 / 1.3, 'tokens'), '1.3× more tokens');
  assert.equal(formatSavings(1.001, 'steps'), 'same steps');
  assert.equal(formatSavings(12.4, 'steps'), '12× fewer steps');
  assert.equal(formatSavings(0, 'steps'), '–');
});
