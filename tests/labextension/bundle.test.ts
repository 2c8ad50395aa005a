import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runsOfPlot, type Bundle } from '../../labextension/src/bundle.js';

const empty = { step: [], tokens: [], wallS: [], loss: [] };
const bundle: Bundle = {
  version: 1,
  runs: ['a', 'b', 'c'].map((id) => ({ id, name: id.toUpperCase(), status: 'done' as const, train: empty })),
  plots: [{ kind: 'loss' }],
};

test('a plot without runs shows all runs', () => {
  assert.deepEqual(runsOfPlot(bundle, { kind: 'loss' }).map((r) => r.id), ['a', 'b', 'c']);
});

test("a plot's runs come in the plot's order", () => {
  assert.deepEqual(runsOfPlot(bundle, { kind: 'loss', runs: ['c', 'a'] }).map((r) => r.id), ['c', 'a']);
});
