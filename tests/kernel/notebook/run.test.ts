// `mambalab notebook run` end to end: small notebooks on the real kernel (the compiled one the
// kernel spec starts), driven over ZeroMQ by our own client.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import type { Cell, Notebook, Output } from '../../../kernel/src/notebook/ipynb.js';
import { repoRoot, scratchDir } from '../../helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');

function mambalab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 3 * 60_000 });
}

const code = (source: string, tags?: string[]): Cell => ({ cell_type: 'code', metadata: tags ? { tags } : {}, source, outputs: [], execution_count: null });

function writeNotebook(dir: string, name: string, cells: Cell[]): string {
  const nb: Notebook = { nbformat: 4, nbformat_minor: 4, metadata: { kernelspec: { name: 'mambalab', display_name: 'Mamba Lab (TypeScript)' }, custom: 'kept' }, cells };
  writeFileSync(join(dir, name), JSON.stringify(nb, null, 1));
  return join(dir, name);
}

const text = (x: string | string[] | undefined) => (Array.isArray(x) ? x.join('') : (x ?? ''));
const streams = (outputs: Output[], name: string) => outputs.map((o) => (o.output_type === 'stream' && o.name === name ? text(o.text) : '')).join('');

test('notebook run executes every cell on the kernel: streams, parameters, display updates, our MIME output', () => {
  const dir = scratchDir();
  const input = writeNotebook(dir, 'small.ipynb', [
    { cell_type: 'markdown', metadata: {}, source: '# A small notebook' },
    code("console.log('hello from the kernel');\nprocess.stderr.write('a note on stderr\\n');\nconsole.log(process.cwd());"),
    code("const label: string = 'default';\nconst repeats: number = 1;", ['parameters']),
    code('console.log(`${label} × ${repeats + 1}`);'),
    code("import * as tslab from 'tslab';\nconst shown = tslab.newDisplay();\nshown.text('first draft');\nshown.text('final text');"),
    code([
      "import { compareRuns, show } from 'mambalab';",
      "const curve = (id: string, loss: number[]) => ({ id, train: { step: loss.map((_, i) => i + 1), tokens: loss.map((_, i) => 64 * (i + 1)), loss } });",
      "show(compareRuns(curve('mamba', [5, 4, 3, 2]), curve('moe-mamba', [5, 3, 2, 1]), { smoothing: 1 }));",
    ].join('\n')),
    code(''),
  ]);
  const before = readFileSync(input, 'utf8');
  const out = join(dir, 'small.out.ipynb');
  const run = mambalab(['notebook', 'run', input, '--out', out, '--param', 'label=injected', '--param', 'repeats=2']);
  assert.equal(run.status, 0, run.stderr);
  // A progress line per code cell that ran: its place, its first line, the seconds it took.
  const progress = run.stdout.split('\n').filter((l) => l.startsWith('cell '));
  assert.equal(progress.length, 6, run.stdout);
  assert.match(progress[0]!, /^cell 2\/8 \(1 of 6 code cells\) \d+\.\d s: console\.log\('hello from the kernel'\);$/);
  assert.match(progress[2]!, /^cell 4\/8 \(3 of 6 code cells\) \d+\.\d s: \/\/ Parameters \(mambalab notebook run --param\)$/);
  assert.match(run.stdout, new RegExp(`wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.equal(readFileSync(input, 'utf8'), before, 'the input notebook is left as it was');

  const nb = JSON.parse(readFileSync(out, 'utf8')) as Notebook;
  assert.equal(nb.nbformat, 4);
  assert.equal(nb.metadata.custom, 'kept');
  const cells = nb.cells;
  assert.deepEqual(cells.map((c) => c.execution_count ?? null), [null, 1, 2, 3, 4, 5, 6, null]);
  assert.equal(streams(cells[1]!.outputs!, 'stdout'), `hello from the kernel\n${dir}\n`, 'the kernel runs in the notebook\'s directory');
  assert.equal(streams(cells[1]!.outputs!, 'stderr'), 'a note on stderr\n');
  assert.deepEqual(cells[3]!.metadata.tags, ['injected-parameters']);
  assert.equal(streams(cells[4]!.outputs!, 'stdout'), 'injected × 3\n');
  // update_display_data replaced the display it targets: one output, with the last text.
  assert.deepEqual(cells[5]!.outputs, [{ output_type: 'display_data', data: { 'text/plain': ['final text'] }, metadata: {} }]);
  const shown = cells[6]!.outputs!.filter((o) => o.output_type === 'display_data');
  assert.equal(shown.length, 1);
  const data = (shown[0] as { data: Record<string, unknown> }).data;
  const doc = data[MAMBALAB_MIME] as DisplayDoc;
  assert.deepEqual([doc.comparisons![0]!.baseline, doc.comparisons![0]!.candidate], ['mamba', 'moe-mamba']);
  assert.equal(doc.comparisons![0]!.baselineFinalLoss, 2);
  assert.equal(doc.comparisons![0]!.ratio, 4 / 3);
  assert.match(text(data['text/plain'] as string[]), /moe-mamba reaches mamba's final loss/);
  assert.ok(cells.every((c) => (c.outputs ?? []).every((o) => o.output_type !== 'error')));
});

test('notebook run stops at the failing cell: non-zero exit, the cell\'s error, the cells after it not run', () => {
  const dir = scratchDir();
  const input = writeNotebook(dir, 'fails.ipynb', [
    code("console.log('first');"),
    code("import { createModel } from 'mambalab';\ncreateModel({ dModel: -1, pattern: 'M' });"),
    code("console.log('never');"),
  ]);
  const out = join(dir, 'fails.out.ipynb');
  const run = mambalab(['notebook', 'run', input, '--out', out]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /^mambalab: notebook run: cell 2 failed: MambalabError: config\.dModel: expected an integer in \[1, 65536\], got -1\n/);
  assert.match(run.stderr, /at createModel/, 'the traceback follows');
  const cells = (JSON.parse(readFileSync(out, 'utf8')) as Notebook).cells;
  assert.deepEqual(cells.map((c) => c.execution_count), [1, 2, null]);
  assert.match(streams(cells[1]!.outputs!, 'stderr'), /MambalabError: config\.dModel/);
  assert.deepEqual(cells[2]!.outputs, []);
});

test('notebook run kills a cell that outlives --timeout, with its kernel', () => {
  const dir = scratchDir();
  const input = writeNotebook(dir, 'slow.ipynb', [code('await new Promise((resolve) => setTimeout(resolve, 120_000));')]);
  const started = Date.now();
  const run = mambalab(['notebook', 'run', input, '--timeout', '2']);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /cell 1 failed: ExecutionTimeout: the cell ran longer than its timeout \(2 s\); the kernel was killed/);
  assert.ok(Date.now() - started < 60_000, 'it did not wait for the cell');
  assert.deepEqual(readdirSync(dir), ['slow.ipynb'], 'without --out nothing is written');
});

test('notebook run refuses bad input before starting a kernel, naming what is wrong', () => {
  const dir = scratchDir();
  writeFileSync(join(dir, 'broken.ipynb'), '{"cells": [');
  const ok = writeNotebook(dir, 'ok.ipynb', [code('1')]);
  const cases: [string[], RegExp][] = [
    [['notebook', 'run', join(dir, 'missing.ipynb')], /notebook: .*missing\.ipynb does not exist/],
    [['notebook', 'run', join(dir, 'broken.ipynb')], /notebook: .*broken\.ipynb is not valid JSON/],
    [['notebook', 'run', ok, '--param', 'scale'], /--param "scale": expected key=value/],
    [['notebook', 'run', ok, '--param', 'scale=ci'], /--param given, but no code cell is tagged "parameters"/],
    [['notebook', 'run', ok, '--timeout', 'soon'], /--timeout: expected a non-negative number, got 'soon'/],
    [['notebook', 'run'], /notebook run: expected one notebook, got none/],
    [['notebook', 'execute', ok], /notebook: expected 'run', got 'execute'/],
  ];
  for (const [args, message] of cases) {
    const run = mambalab(args);
    assert.equal(run.status, 2, args.join(' '));
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  }
  assert.match(mambalab(['notebook', '--help']).stdout, /mambalab notebook run NOTEBOOK\.ipynb \[--out OUT\.ipynb\] \[--param key=value \.\.\.\] \[--timeout S\]/);
});
