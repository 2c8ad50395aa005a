#!/usr/bin/env node
// `npm start`: trains the tiny Mamba on the C4 sample with a progress bar.
// (JupyterLab on the quick-start notebook replaces this once the kernel lands.)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const sample = join(root, '..', 'shared', 'datasets', 'c4', 'olmo', 'c4-sample.00000-of-00001.json.gz');
const data = process.env.MAMBALAB_DATA ?? sample;
if (!existsSync(data)) {
  console.error(`npm start: no training data at ${data}; set MAMBALAB_DATA to a C4 .json.gz file or directory`);
  process.exit(2);
}
const cli = join(root, 'kernel', 'dist', 'cli', 'main.js');
const args = ['train', '--model', 'mamba', '--size', 'tiny', '--steps', '300', '--data', data, '--eval-every', '100', '--out', join(root, 'runs', 'quickstart')];
const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
