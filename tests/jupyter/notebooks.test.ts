// notebooks/01-quickstart.ipynb, executed headlessly with our kernel (nbclient's `jupyter
// execute`) from a directory outside the repo, on the C4 sample; then its outputs checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import { ensureJupyter, root, venvBin } from '../support/jupyter.js';
import { schemaErrors } from '../support/schema.js';
import { C4_SAMPLE, scratchDir } from '../helpers.js';

const NOTEBOOK = '01-quickstart.ipynb';

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const joined = (x: string | string[] | undefined) => (Array.isArray(x) ? x.join('') : (x ?? ''));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function docs(cells: Cell[]): DisplayDoc[] {
  return cells.flatMap((c) => c.outputs ?? []).filter((o) => o.data?.[MAMBALAB_MIME]).map((o) => o.data![MAMBALAB_MIME] as DisplayDoc);
}

test('the quick-start notebook trains tiny Mamba on C4 and shows a decreasing loss', () => {
  assert.ok(existsSync(C4_SAMPLE), `the C4 sample is missing: ${C4_SAMPLE}`);
  const env = ensureJupyter();
  const dir = scratchDir('mambalab-notebook-');
  copyFileSync(join(root, 'notebooks', NOTEBOOK), join(dir, NOTEBOOK));
  const run = spawnSync(join(venvBin, 'jupyter'), ['execute', '--inplace', '--timeout=600', NOTEBOOK], {
    cwd: dir,
    // The notebook prepares its C4 slice into this run's own cache, from the offline sample.
    env: { ...env, MAMBALAB_DATA_DIR: join(dir, 'cache'), MAMBALAB_OFFLINE: '1' },
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  assert.equal(run.status, 0, `jupyter execute failed:\n${run.stderr}`);
  const cells = (JSON.parse(readFileSync(join(dir, NOTEBOOK), 'utf8')) as { cells: Cell[] }).cells;
  const outputs = cells.flatMap((c) => c.outputs ?? []);
  // stderr carries progress notes (the C4 slice being prepared on first use), never errors.
  const stderr = outputs.filter((o) => o.name === 'stderr').map((o) => [o.text ?? ''].flat().join(''));
  assert.deepEqual(outputs.filter((o) => o.output_type === 'error'), [], 'no errors');
  assert.ok(stderr.every((text) => !/error|exception|failed/i.test(text)), `stderr: ${stderr.join('\n')}`);

  const shown = docs(cells);
  assert.equal(shown.length, 2, 'the live training output and show(saved)');
  for (const doc of shown) assert.equal(schemaErrors(doc), '');
  const bundles = outputs.filter((o) => o.data?.[MAMBALAB_MIME]);
  for (const o of bundles) {
    assert.match(joined(o.data!['text/plain'] as string | string[]), /quickstart \[done\]/);
    assert.match(joined(o.data!['text/html'] as string | string[]), /<table>/);
  }

  const live = shown[0]!.runs[0]!;
  assert.deepEqual([live.id, live.status, live.train.step.length], ['quickstart', 'done', 40]);
  assert.equal(shown[0]!.progress, undefined, 'the live output ends without its progress line');
  const loss = live.train.loss;
  assert.ok(mean(loss.slice(0, 5)) - mean(loss.slice(-5)) > 0.5, `training loss ${mean(loss.slice(0, 5))} → ${mean(loss.slice(-5))}`);
  const val = live.validation!.loss;
  assert.ok(val.at(-1)! < val[0]!, `validation loss ${val.join(' → ')}`);
  assert.deepEqual(shown[1]!.runs[0]!.train.loss, loss, 'the run loaded from disk is the one trained');
  const stdout = outputs.filter((o) => o.name === 'stdout').map((o) => joined(o.text)).join('');
  assert.match(stdout, /training loss, mean of 5 steps: \d+\.\d+ at the start, \d+\.\d+ at the end/);
});

test('the committed quick-start notebook holds the outputs of a real run', () => {
  const cells = (JSON.parse(readFileSync(join(root, 'notebooks', NOTEBOOK), 'utf8')) as { cells: Cell[] }).cells;
  const code = cells.filter((c) => c.cell_type === 'code');
  assert.ok(code.every((c) => (c.outputs ?? []).length > 0), 'every code cell has outputs');
  const shown = docs(cells);
  assert.ok(shown.length > 0);
  for (const doc of shown) assert.equal(schemaErrors(doc), '');
  assert.deepEqual(shown.map((d) => d.runs[0]!.status), ['done', 'done']);
});
