// `mambalab import`: a checkpoint on disk into a model directory, its JSON line, its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../../kernel/src/models/model.js';
import { repoRoot, scratchDir } from '../../helpers.js';
import { writeCheckpoint } from '../models/import/checkpoints.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');
const mambalab = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: repoRoot, encoding: 'utf8' });

test('mambalab import --from --out --json writes a model loadModel reads, and says what it wrote', () => {
  const root = scratchDir();
  const from = join(root, 'mamba-ssm');
  writeCheckpoint('mamba-ssm', from, 'float16');
  const out = join(root, 'imported');
  const run = mambalab('import', '--from', from, '--out', out, '--json');
  assert.equal(run.status, 0, run.stderr);
  const line = JSON.parse(run.stdout);
  assert.equal(line.format, 'mamba-ssm');
  assert.equal(line.tokenizer, 'neox');
  assert.equal(line.config.pattern, 'M*2');
  assert.deepEqual(readdirSync(out).sort(), ['config.json', 'import.json', 'model.safetensors']);
  assert.equal(loadModel(out).parameterCount().total, line.parameters);

  const again = mambalab('import', '--from', from, '--out', out);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /^mambalab: import: --out .*imported is not empty; the import writes a new directory and replaces nothing\n$/);

  const missing = mambalab('import', '--out', join(root, 'x'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /import: --from is required/);
  assert.ok(!existsSync(join(root, 'x')));

  const help = mambalab('import', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /mambalab import --from <dir> --out <dir>/);
});
