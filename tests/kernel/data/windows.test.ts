import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TokenStream, WindowSampler } from '../../../kernel/src/data/windows.js';
import { random } from './helpers.js';

/** A stream whose token k is k (mod 65536), cut into runs of random lengths. */
function countingStream(total: number, seed: number): TokenStream {
  const all = Uint16Array.from({ length: total }, (_, k) => k % 65536);
  const rand = random(seed);
  const runs: Uint16Array[] = [];
  for (let at = 0; at < total; ) {
    const n = Math.min(total - at, 1 + Math.floor(rand() * 300));
    runs.push(all.subarray(at, at + n));
    at += n;
  }
  return new TokenStream(runs);
}

test('token stream: a copy across any runs equals the same slice of the whole stream', () => {
  const stream = countingStream(20_000, 1);
  assert.equal(stream.length, 20_000);
  const rand = random(2);
  for (let i = 0; i < 2000; i++) {
    const length = 1 + Math.floor(rand() * 1000);
    const start = Math.floor(rand() * (20_000 - length + 1));
    const out = new Int32Array(length);
    stream.copy(start, out);
    assert.deepEqual([...out], Array.from({ length }, (_, k) => start + k));
  }
});

test('window sampler: an epoch visits each window of the epoch exactly once, then the epoch counter moves on', () => {
  const total = 10_007;
  const seqLen = 63;
  const width = seqLen + 1;
  const sampler = new WindowSampler(countingStream(total, 3), { batchSize: 1, seqLen, seed: 42 }, 'test');
  const starts: number[] = [];
  for (;;) {
    const row = sampler.next().tokens;
    if (sampler.state().epoch !== 0) break;
    for (let k = 1; k < width; k++) assert.equal(row[k], row[0]! + k, 'a window is contiguous');
    starts.push(row[0]!);
  }
  const offset = starts[0]! % width;
  assert.equal(starts.length, Math.floor((total - offset) / width), 'the epoch holds every whole window after its offset');
  assert.equal(new Set(starts).size, starts.length, 'no window twice in an epoch');
  for (const s of starts) assert.equal((s - offset) % width, 0, 'windows start on the epoch grid');
  assert.notDeepEqual(starts.slice(0, 20), [...starts].sort((a, b) => a - b).slice(0, 20), 'the order is shuffled');
});

test('window sampler: same seed, same batches; another seed, other batches', () => {
  const stream = countingStream(50_000, 4);
  const take = (seed: number) => {
    const s = new WindowSampler(stream, { batchSize: 4, seqLen: 127, seed }, 'test');
    return Array.from({ length: 10 }, () => [...s.next().tokens]);
  };
  assert.deepEqual(take(7), take(7));
  assert.notDeepEqual(take(7), take(8));
});

test('window sampler: a state saved as JSON and resumed gives exactly the batches that would have come, across epochs', () => {
  const stream = countingStream(3_000, 5);
  const options = { batchSize: 7, seqLen: 31, seed: 9 };
  const straight = new WindowSampler(stream, options, 'test');
  const all = Array.from({ length: 40 }, () => [...straight.next().tokens]);
  assert.ok(straight.state().epoch! >= 2, 'the run should cross epoch boundaries');

  const first = new WindowSampler(stream, options, 'test');
  for (let i = 0; i < 13; i++) first.next();
  const saved = JSON.parse(JSON.stringify(first.state()));
  assert.deepEqual(Object.keys(saved).sort(), ['batches', 'epoch', 'position', 'seed', 'seqLen']);
  const resumed = new WindowSampler(stream, { ...options, resume: saved }, 'test');
  assert.deepEqual(Array.from({ length: 27 }, () => [...resumed.next().tokens]), all.slice(13));
  assert.equal(resumed.state().batches, 40);
});

test('window sampler: refuses a state for another seed, another seqLen, or another kind of source; and too little data', () => {
  const stream = countingStream(3_000, 6);
  const state = { seed: 1, batches: 3, epoch: 0, position: 21, seqLen: 31 };
  assert.throws(() => new WindowSampler(stream, { batchSize: 7, seqLen: 31, seed: 2, resume: state }, 'd'), /for seed 1, not 2/);
  assert.throws(() => new WindowSampler(stream, { batchSize: 7, seqLen: 63, seed: 1, resume: state }, 'd'), /for seqLen 31, not 63/);
  assert.throws(() => new WindowSampler(stream, { batchSize: 7, seqLen: 31, seed: 1, resume: { seed: 1, batches: 3, rngState: 5 } }, 'd'), /no epoch\/position cursor/);
  assert.throws(() => new WindowSampler(stream, { batchSize: 7, seqLen: 3000, seed: 1 }, 'd'), /d: 3000 tokens, fewer than one window of seqLen \+ 1 = 3001/);
  assert.throws(() => new WindowSampler(stream, { batchSize: 0, seqLen: 3, seed: 1 }, 'd'), /batchSize must be a positive integer/);
});

test('window sampler: refuses a saved position past the epoch (a damaged checkpoint), which would look for its window forever', () => {
  const stream = countingStream(3_000, 6); // 93 or 92 windows of 32 an epoch
  const options = { batchSize: 2, seqLen: 31, seed: 1 };
  for (const position of [1000, 123_456_789, -1, 0.5]) {
    assert.throws(() => new WindowSampler(stream, { ...options, resume: { seed: 1, batches: 3, epoch: 0, position, seqLen: 31 } }, 'd'), /^MambalabError: d: the saved sampler state is at window .* of an epoch of 9\d windows: it is not this data's$/);
  }
  const atTheEnd = new WindowSampler(stream, { ...options, resume: { seed: 1, batches: 3, epoch: 0, position: 92, seqLen: 31 } }, 'd');
  assert.equal(atTheEnd.next().tokens.length, 64, 'the last position of an epoch starts the next');
});
