// show() and toDisplayDoc(): runs, experiments and comparisons as one display document.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { show, toDisplayDoc } from '../../../kernel/src/display/show.js';
import { compareRuns } from '../../../kernel/src/train/compare.js';
import { trainRun } from '../../../kernel/src/train/train-run.js';
import { schemaErrors } from '../../support/schema.js';
import { tinyData, tinyTrainer } from '../../support/tiny.js';
import { scratchDir } from '../../helpers.js';

const dir = scratchDir('mambalab-show-');
const data = tinyData();
const a = await trainRun(tinyTrainer().trainer, data, { steps: 6, dir: join(dir, 'a'), evalBatches: 1 });
const b = await trainRun(tinyTrainer({ dModel: 24 }).trainer, data, { steps: 6, dir: join(dir, 'b'), evalBatches: 1 });

test('a run, runs, an experiment result and a comparison each become a valid document', () => {
  const one = toDisplayDoc(a);
  assert.deepEqual([one.title, one.runs.map((r) => r.id)], ['a', ['a']]);
  assert.deepEqual(toDisplayDoc([a, b], { title: 'two' }).runs.map((r) => r.id), ['a', 'b']);
  const comparison = compareRuns(a, b, { smoothing: 0.5 });
  const experimentDoc = toDisplayDoc({ dir, runs: [a, b], comparisons: [comparison], stopped: false });
  assert.deepEqual(experimentDoc.plots.map((p) => p.kind), ['loss', 'savings']);
  const comparisonDoc = toDisplayDoc(comparison);
  assert.deepEqual([comparisonDoc.runs, comparisonDoc.comparisons?.[0]?.candidate], [[], 'b']);
  for (const doc of [one, experimentDoc, comparisonDoc]) assert.equal(schemaErrors(JSON.parse(JSON.stringify(doc))), '');
  assert.equal(toDisplayDoc(one, { title: 'renamed' }).title, 'renamed');
});

test('show() outside a notebook prints the text summary', () => {
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => (printed.push(chunk), true)) as typeof process.stdout.write;
  try {
    show(a);
  } finally {
    process.stdout.write = write;
  }
  assert.match(printed.join(''), /^a\n {2}a \[done\] mamba M\*1 d_model 16 .*: step 6, 192 tokens, loss \d+\.\d{4},/);
});

test('show() names what it cannot show', () => {
  assert.throws(() => show(42 as never), /show: expected a Run, an array of runs, an experiment result, a comparison or a display document/);
  assert.throws(() => show([a, { id: 'x' }] as never), /show: item 1 of the array is not a Run/);
});
