// displayDocument(): the plots a document of runs and comparisons carries, valid against the schema.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expertBalance } from '../../contract/src/balance.js';
import { displayDocument } from '../../contract/src/document.js';
import type { ComparisonDoc, RunDoc } from '../../contract/src/schema.js';
import { schemaErrors } from '../support/schema.js';

const run = (id: string, extra: Partial<RunDoc> = {}): RunDoc => ({
  id,
  name: id.toUpperCase(),
  status: 'done',
  train: { step: [1, 2], tokens: [64, 128], wallS: [0.1, 0.2], loss: [5, 4] },
  ...extra,
});
const comparison = (baseline: string, candidate: string): ComparisonDoc => ({
  baseline,
  candidate,
  smoothing: 1,
  axis: 'step',
  baselineFinalLoss: 4,
  curve: { loss: [], baselineAt: [], candidateAt: [], ratio: [] },
});
const experts = { layers: [1], numExperts: 2, step: [2], counts: [[[40, 24]]], dropped: [[0]] };

test('runs alone: the loss plot, and nothing the parts did not have', () => {
  const doc = displayDocument({ runs: [run('a'), run('b')] });
  assert.deepEqual(doc, { version: 1, runs: [run('a'), run('b')], plots: [{ kind: 'loss', x: 'step' }] });
  assert.equal(schemaErrors(doc), '');
});

test('validation points, comparisons and expert counts each add what shows them', () => {
  const validated = run('a', { validation: { step: [0, 2], tokens: [0, 128], wallS: [0, 0.2], loss: [6, 4.5] } });
  const moe = run('moe', { experts });
  const notYet = run('moe-2', { experts: { ...experts, step: [], counts: [], dropped: [] } });
  const doc = displayDocument({
    runs: [validated, moe, notYet],
    comparisons: [comparison('a', 'moe')],
    title: 'all',
    progress: { runId: 'moe', step: 2, totalSteps: 4 },
  });
  assert.deepEqual(doc.plots, [
    { kind: 'loss', x: 'step', showValidation: true },
    { kind: 'savings', comparison: 0, title: 'moe vs a' },
    { kind: 'experts', runs: ['moe'], title: 'MOE: tokens per expert' },
  ]);
  assert.deepEqual([doc.title, doc.progress?.step, doc.comparisons?.length], ['all', 2, 1]);
  assert.equal(schemaErrors(doc), '');
});

test("each run's expert counts go out with their balance, computed from them (never a stale one)", () => {
  const moe = run('moe', { experts });
  const doc = displayDocument({ runs: [moe] });
  assert.deepEqual(doc.runs[0]!.experts!.balance, { tokens: [[64]], maxOverMean: [[1.25]], cv: [[0.25]], droppedFraction: [[0]] });
  assert.equal(moe.experts!.balance, undefined, 'the parts are not changed');
  const stale = { ...experts, balance: expertBalance({ ...experts, counts: [[[64, 0]]] }) };
  assert.deepEqual(displayDocument({ runs: [run('moe', { experts: stale })] }).runs[0]!.experts!.balance, expertBalance(experts));
  assert.equal(schemaErrors(doc), '');
});

test("a sweep's final losses add the final-loss plot after the loss curves", () => {
  const finalLoss = { field: 'numExperts', smoothing: 0.5, points: [{ runId: 'a', value: 1, loss: 4.5 }, { runId: 'b', value: 8, loss: 4.2 }] };
  const doc = displayDocument({ runs: [run('a'), run('b')], comparisons: [comparison('a', 'b')], finalLoss });
  assert.deepEqual(doc.finalLoss, finalLoss);
  assert.deepEqual(doc.plots, [{ kind: 'loss', x: 'step' }, { kind: 'final', title: 'final loss by numExperts' }, { kind: 'savings', comparison: 0, title: 'b vs a' }]);
  assert.equal(schemaErrors(doc), '');
  // A sweep that trained nothing yet has no points to plot.
  assert.deepEqual(displayDocument({ runs: [], finalLoss: { ...finalLoss, points: [] } }).plots, [{ kind: 'loss', x: 'step' }]);
});
