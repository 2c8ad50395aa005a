// The routing rows the balance table and the expert charts draw: the kernel's balance as sent,
// or, for documents from kernels that did not send it, the contract's.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expertBalance } from '@mambalab/contract';

import { routingAt } from '../../labextension/src/experts.js';
import { TWO_LAYERS } from '../support/expert-counts.js';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

const experts = TWO_LAYERS;

test('a document without a balance (an older kernel): per layer tokens, shares, balance and dropped fraction', () => {
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

test("the kernel's balance is shown as it came, not computed again", () => {
  const sent = expertBalance(experts);
  sent.maxOverMean[1]![0] = 9.5;
  sent.tokens[1]![0] = 1234;
  const [layer1] = routingAt({ ...experts, balance: sent }, 1);
  assert.deepEqual([layer1!.maxOverMean, layer1!.tokens, layer1!.counts], [9.5, 1234, [25, 15]]);
});
