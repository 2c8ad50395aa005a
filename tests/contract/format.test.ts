// How numbers read, in the kernel's text and in the extension's plots alike.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { axisUnit, formatCount, formatDuration, formatInteger, formatLoss, formatPercent, formatPosition, formatSavings } from '../../contract/src/format.js';

test('counts read with SI-like suffixes', () => {
  assert.equal(formatCount(6_553_600_000), '6.55B');
  assert.equal(formatCount(211_000), '211k');
  assert.equal(formatCount(1_500_000), '1.5M');
  assert.equal(formatCount(950), '950');
  assert.equal(formatCount(999_700), '1M', 'rounding up to the next suffix');
  assert.equal(formatCount(999.7), '1k');
  assert.equal(formatCount(999.4), '999');
  assert.equal(formatCount(0.5), '0.5');
  assert.equal(formatCount(Number.NaN), '–');
});

test('integers, losses, percents', () => {
  assert.equal(formatInteger(46_400), '46,400');
  assert.equal(formatLoss(3.41), '3.4100');
  assert.equal(formatPercent(0.034), '3.4%');
});

test('positions and units along a comparison axis', () => {
  assert.equal(formatPosition('step', 46_400), 'step 46,400');
  assert.equal(formatPosition('tokens', 3_040_870_400), '3.04B tokens');
  assert.deepEqual([axisUnit('step'), axisUnit('tokens')], ['steps', 'tokens']);
});

test('durations', () => {
  assert.equal(formatDuration(12.5), '12.5s');
  assert.equal(formatDuration(245), '4m 05s');
  assert.equal(formatDuration(3 * 3600 + 125), '3h 02m');
  assert.equal(formatDuration(59.96), '1m 00s', 'no "60.0s"');
  assert.equal(formatDuration(Number.NaN), '–');
});

test('savings read as the paper says them', () => {
  assert.equal(formatSavings(2.155, 'steps'), '2.2× fewer steps');
  assert.equal(formatSavings(1 / 1.3, 'tokens'), '1.3× more tokens');
  assert.equal(formatSavings(1.001, 'steps'), 'same steps');
  assert.equal(formatSavings(12.4, 'steps'), '12× fewer steps');
  assert.equal(formatSavings(0, 'steps'), '–');
});
