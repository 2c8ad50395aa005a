// LiveOutput redraws at most every minIntervalMs and always shows the last state.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { displayDocument, MAMBALAB_MIME } from '@mambalab/contract';

import { toBundle, type MimeBundle } from '../../../kernel/src/display/bundle.js';
import { LiveOutput, thinColumns } from '../../../kernel/src/display/live.js';

test('many changes in a burst draw once at once, once when the interval is up, and flush draws the last state', async () => {
  const sent: { bundle: MimeBundle; update: boolean; at: number }[] = [];
  let state = 0;
  const live = new LiveOutput(
    (bundle, update) => sent.push({ bundle, update, at: performance.now() }),
    () => toBundle(displayDocument({ runs: [], title: `state ${state}` })),
    100,
  );
  for (state = 1; state <= 50; state++) live.changed();
  assert.equal(sent.length, 1, 'the first change draws immediately');
  assert.equal(sent[0]!.bundle[MAMBALAB_MIME].title, 'state 1');
  await sleep(150);
  assert.equal(sent.length, 2, 'the rest of the burst draws once, when the interval is up');
  assert.equal(sent[1]!.bundle[MAMBALAB_MIME].title, 'state 51');
  assert.ok(sent[1]!.at - sent[0]!.at >= 95, `redrawn after ${sent[1]!.at - sent[0]!.at} ms`);
  state = 99;
  live.changed();
  live.flush();
  await sleep(150);
  assert.equal(sent.length, 3, 'flush draws now and cancels the pending draw');
  assert.equal(sent[2]!.bundle[MAMBALAB_MIME].title, 'state 99');
  assert.deepEqual(sent.map((s) => s.update), [false, true, true], 'display_data first, then updates of it');
});

test('thinColumns keeps short series and averages long ones into buckets', () => {
  const short = { step: [1, 2, 3], loss: [3, 2, 1] };
  assert.equal(thinColumns(short, 10, ['step']), short);
  const n = 10_000;
  const long = { step: Array.from({ length: n }, (_, i) => i + 1), loss: Array.from({ length: n }, (_, i) => i % 2) };
  const thin = thinColumns(long, 2000, ['step']);
  assert.equal(thin.step.length, 2000);
  assert.equal(thin.loss.length, 2000);
  assert.deepEqual(thin.step.slice(0, 2), [5, 10]);
  assert.equal(thin.step.at(-1), n);
  assert.ok(thin.loss.every((l) => Math.abs(l - 0.5) <= 0.1 + 1e-12), 'bucket means of alternating 0/1');
});
