import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MAMBALAB_MIME } from '@mambalab/contract';

import { notebookJson, readNotebook, splitLines, writeNotebook, type Notebook } from '../../../kernel/src/notebook/ipynb.js';
import { repoRoot, scratchDir } from '../../helpers.js';

test('splitLines keeps each line\'s newline, as nbformat stores text', () => {
  assert.deepEqual(splitLines('a\nb\n'), ['a\n', 'b\n']);
  assert.deepEqual(splitLines('a\n\nb'), ['a\n', '\n', 'b']);
  assert.deepEqual(splitLines(''), []);
});

test('readNotebook reads the committed quick start; notebookJson writes it back as Jupyter does', () => {
  const path = join(repoRoot, 'notebooks', '01-quickstart.ipynb');
  const nb = readNotebook(path);
  assert.equal(nb.nbformat, 4);
  assert.deepEqual((nb.metadata.kernelspec as { name: string }).name, 'mambalab');
  assert.equal(nb.cells.filter((c) => c.cell_type === 'code').length, 4);
  // The quick start was written by Jupyter (nbclient): our writer gives the same JSON, laid
  // out the same way (only numbers may be spelt otherwise: Python writes 1e-05, JSON.stringify 0.00001).
  const ours = notebookJson(nb);
  const jupyters = readFileSync(path, 'utf8');
  assert.deepEqual(JSON.parse(ours), JSON.parse(jupyters));
  assert.equal(ours.split('\n').length, jupyters.split('\n').length);
  assert.equal(ours.slice(0, 2000), jupyters.slice(0, 2000));
});

test('notebookJson stores text as lines and our MIME documents as JSON objects', () => {
  const doc = { version: 1, runs: [], plots: [] };
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { custom: { kept: true } },
    cells: [
      {
        cell_type: 'code',
        id: 'c1',
        metadata: {},
        source: 'a\nb',
        execution_count: 3,
        outputs: [
          { output_type: 'stream', name: 'stdout', text: 'one\ntwo\n' },
          { output_type: 'display_data', data: { [MAMBALAB_MIME]: doc, 'text/plain': 'x\ny' }, metadata: {} },
          { output_type: 'error', ename: 'RangeError', evalue: 'bad', traceback: ['RangeError: bad'] },
        ],
      },
    ],
  };
  const back = JSON.parse(notebookJson(nb));
  assert.deepEqual(back.metadata, { custom: { kept: true } });
  const cell = back.cells[0];
  assert.deepEqual(cell.source, ['a\n', 'b']);
  assert.equal(cell.execution_count, 3);
  assert.deepEqual(cell.outputs[0].text, ['one\n', 'two\n']);
  assert.deepEqual(cell.outputs[1].data[MAMBALAB_MIME], doc);
  assert.deepEqual(cell.outputs[1].data['text/plain'], ['x\n', 'y']);
  assert.deepEqual(cell.outputs[2], { output_type: 'error', ename: 'RangeError', evalue: 'bad', traceback: ['RangeError: bad'] });
});

test('readNotebook names the file and what is wrong with it', () => {
  const dir = scratchDir();
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  assert.throws(() => readNotebook(join(dir, 'missing.ipynb')), /notebook: .*missing\.ipynb does not exist/);
  assert.throws(() => readNotebook(file('bad.ipynb', '{"cells": [')), /notebook: .*bad\.ipynb is not valid JSON/);
  assert.throws(() => readNotebook(file('array.ipynb', '[]')), /array\.ipynb is not a notebook/);
  assert.throws(() => readNotebook(file('v3.ipynb', '{"nbformat": 3, "worksheets": []}')), /v3\.ipynb is nbformat 3; expected nbformat 4/);
  assert.throws(() => readNotebook(file('nocells.ipynb', '{"nbformat": 4}')), /nocells\.ipynb has no "cells" array/);
  assert.throws(() => readNotebook(file('type.ipynb', '{"nbformat": 4, "cells": [{"cell_type": "python", "source": ""}]}')), /type\.ipynb, cell 1 has cell_type "python"/);
  assert.throws(() => readNotebook(file('source.ipynb', '{"nbformat": 4, "cells": [{"cell_type": "code", "source": 3}]}')), /source\.ipynb, cell 1 has no source/);
  const nb = readNotebook(file('minimal.ipynb', '{"nbformat": 4, "cells": [{"cell_type": "code", "source": ["1 +", " 1"]}]}'));
  assert.deepEqual(nb.cells[0]!.metadata, {});
});

test('writeNotebook replaces a file whole: a failed write leaves the old one and no stray file', () => {
  const dir = scratchDir();
  const path = join(dir, 'out.ipynb');
  const nb: Notebook = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: 'markdown', metadata: {}, source: 'v1' }] };
  writeNotebook(path, nb);
  assert.deepEqual(readNotebook(path).cells[0]!.source, ['v1']);
  writeNotebook(path, { ...nb, cells: [{ cell_type: 'markdown', metadata: {}, source: 'v2' }] });
  assert.deepEqual(readNotebook(path).cells[0]!.source, ['v2']);
  assert.deepEqual(readdirSync(dir), ['out.ipynb']);
  // A directory that cannot take the temporary file: the write fails and the notebook stays.
  chmodSync(dir, 0o500);
  try {
    if (process.getuid?.() !== 0) assert.throws(() => writeNotebook(path, nb));
  } finally {
    chmodSync(dir, 0o700);
  }
  assert.deepEqual(readNotebook(path).cells[0]!.source, ['v2']);
  assert.ok(!existsSync(join(dir, 'missing-dir', 'out.ipynb')));
  assert.throws(() => writeNotebook(join(dir, 'missing-dir', 'out.ipynb'), nb), /ENOENT/);
  assert.deepEqual(readdirSync(dir), ['out.ipynb']);
});
