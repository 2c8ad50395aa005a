import assert from 'node:assert/strict';
import { test } from 'node:test';
import { downsampleIndices, pick } from '../../labextension/src/downsample.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('short series are kept whole', () => {
  assert.deepEqual(downsampleIndices([0, 1, 2], [3, 2, 1], 100), [0, 1, 2]);
});

test('100k points shrink to at most four per bucket, ascending, with the ends kept', () => {
  const n = 100_000;
  const x = range(n);
  const y = x.map((i) => Math.sin(i / 300) + 0.1 * Math.sin(i * 1.7));
  const kept = downsampleIndices(x, y, 1000);
  assert.ok(kept.length <= 4000, `${kept.length} points`);
  assert.ok(kept.length >= 2000, `${kept.length} points`);
  assert.equal(kept[0], 0);
  assert.equal(kept.at(-1), n - 1);
  for (let i = 1; i < kept.length; i++) assert.ok(kept[i]! > kept[i - 1]!);
});

test('every bucket keeps its minimum and maximum (a loss spike survives)', () => {
  const n = 50_000;
  const x = range(n);
  const y = x.map((i) => 3 + Math.cos(i / 1000));
  y[12_345] = 9; // spike
  y[40_001] = -1; // dip
  const buckets = 100;
  const kept = new Set(downsampleIndices(x, y, buckets));
  assert.ok(kept.has(12_345));
  assert.ok(kept.has(40_001));
  const width = (n - 1) / buckets;
  for (let b = 0; b < buckets; b++) {
    const members = x.filter((i) => Math.min(Math.floor(i / width), buckets - 1) === b);
    const lo = members.reduce((a, i) => (y[i]! < y[a]! ? i : a));
    const hi = members.reduce((a, i) => (y[i]! > y[a]! ? i : a));
    assert.ok(kept.has(lo) && kept.has(hi), `bucket ${b}`);
  }
});

test('a zoomed range spends the buckets inside it, plus one neighbour each side', () => {
  const x = range(100_000).map((i) => i * 10);
  const y = x.map((v) => Math.sin(v));
  const kept = downsampleIndices(x, y, 100, { min: 200_000, max: 300_000 });
  const xs = pick(x, kept);
  assert.equal(xs[0], 199_990);
  assert.equal(xs.at(-1), 300_010);
  assert.ok(xs.slice(1, -1).every((v) => v >= 200_000 && v <= 300_000));
  assert.ok(kept.length > 200, 'the zoomed range is drawn in detail');
});

test('points with a non-finite x or y are never drawn', () => {
  const x = range(10_000).map((i) => (i % 5 === 0 ? Number.NaN : i));
  const kept = downsampleIndices(x, range(10_000), 10);
  assert.ok(kept.length > 0 && kept.every((i) => Number.isFinite(x[i]!)));
  assert.deepEqual(downsampleIndices([0, Number.NaN, 2], [1, 1, 1], 10), [0, 2]);
});

test('non-finite y values are never drawn', () => {
  const x = range(10_000);
  const y = x.map((i) => (i % 7 === 0 ? Number.NaN : i));
  const kept = downsampleIndices(x, y, 10);
  assert.ok(kept.every((i) => Number.isFinite(y[i]!)));
  assert.ok(downsampleIndices([0, 1], [Number.NaN, 1], 10).every((i) => i === 1));
});
