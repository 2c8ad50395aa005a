// scripts/pack-notebook-runtime.sh: what `mambalab notebook run` needs on a machine without npm
// (the GPU host). Unpacked beside a few tracked files in an empty directory, with no
// node_modules above it and a bare environment, it runs a notebook on the real kernel.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import type { Notebook } from '../../../kernel/src/notebook/ipynb.js';
import { repoRoot, scratchDir } from '../../helpers.js';

test('the packed notebook runtime runs a notebook where there is no npm, network or node_modules', { skip: process.platform !== 'linux' || process.arch !== 'x64' }, () => {
  const dir = scratchDir('mambalab-runtime-');
  const archive = join(dir, 'runtime.tar.xz');
  const pack = spawnSync('bash', [join(repoRoot, 'scripts', 'pack-notebook-runtime.sh'), archive], { cwd: repoRoot, encoding: 'utf8', timeout: 5 * 60_000 });
  assert.equal(pack.status, 0, pack.stderr);
  assert.match(pack.stdout, /runtime\.tar\.xz: [\d.]+M \([\d.]+M of node_modules unpacked\)/);

  // The host's checkout: the tracked files the runtime needs, the archive, the addon it built.
  const host = join(dir, 'host');
  mkdirSync(host);
  for (const path of ['kernel/package.json', 'kernel/bin', 'contract/package.json', 'native/build/Release/mambalab.node']) cpSync(join(repoRoot, path), join(host, path), { recursive: true });
  assert.equal(spawnSync('tar', ['-xJf', archive], { cwd: host }).status, 0);
  assert.ok(existsSync(join(host, 'node_modules', 'zeromq')) && !existsSync(join(host, 'node_modules', 'typescript')), 'the kernel\'s run-time dependencies, no dev tools');

  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      { cell_type: 'code', id: 'a', metadata: {}, source: "console.log('hello from the packed kernel');", outputs: [], execution_count: null },
      {
        cell_type: 'code',
        id: 'b',
        metadata: {},
        source: "import { compareRuns, show } from 'mambalab';\nconst c = (id: string, loss: number[]) => ({ id, train: { step: [1, 2, 3], tokens: [1, 2, 3], loss } });\nshow(compareRuns(c('a', [3, 2, 1]), c('b', [3, 1, 0.5]), { smoothing: 1 }));",
        outputs: [],
        execution_count: null,
      },
    ],
  };
  mkdirSync(join(host, 'notebooks'));
  writeFileSync(join(host, 'notebooks', 'n.ipynb'), JSON.stringify(nb));
  const run = spawnSync(process.execPath, ['kernel/bin/mambalab.js', 'notebook', 'run', 'notebooks/n.ipynb', '--out', 'notebooks/out.ipynb'], {
    cwd: host,
    env: { PATH: '/usr/bin:/bin', HOME: join(dir, 'home'), MAMBALAB_OFFLINE: '1' },
    encoding: 'utf8',
    timeout: 3 * 60_000,
  });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.equal(run.stderr, '', 'no warnings (a zeromq addon that does not load would warn)');
  const cells = (JSON.parse(readFileSync(join(host, 'notebooks', 'out.ipynb'), 'utf8')) as Notebook).cells;
  assert.deepEqual(cells[0]!.outputs, [{ output_type: 'stream', name: 'stdout', text: ['hello from the packed kernel\n'] }]);
  const shown = cells[1]!.outputs![0] as { data: Record<string, unknown> };
  assert.equal((shown.data[MAMBALAB_MIME] as DisplayDoc).comparisons![0]!.candidate, 'b');
});
