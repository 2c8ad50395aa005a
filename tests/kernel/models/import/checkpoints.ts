// Published checkpoint layouts written by PyTorch (bench/reference/import_ref.py): small
// random models with the real names, shapes, dtypes and files, and their reference losses.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { repoRoot } from '../../../helpers.js';
import { referencePython } from '../../../bench/reference/python.js';

export type Layout = 'hf-mamba' | 'hf-mamba-sharded' | 'mamba-ssm' | 'blackmamba';

export interface ReferenceLoss {
  loss: number;
  row_losses: number[];
  logits_shape: number[];
}

const SCRIPT = join(repoRoot, 'bench', 'reference', 'import_ref.py');

function run(args: string[]): string {
  const result = spawnSync(referencePython(), [SCRIPT, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`import_ref.py ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

/** Writes a checkpoint of `layout` into `dir`; with `tokens`, returns the source model's loss on them. */
export function writeCheckpoint(layout: Layout, dir: string, dtype: 'float32' | 'float16' | 'bfloat16', tokens?: number[][], seed = 0): ReferenceLoss | undefined {
  const args = ['write', '--format', layout, '--out', dir, '--dtype', dtype, '--seed', String(seed)];
  if (!tokens) {
    run(args);
    return undefined;
  }
  const batch = join(dir, '..', `${layout}-batch.json`);
  writeFileSync(batch, JSON.stringify({ tokens }));
  return JSON.parse(run([...args, '--batch', batch])) as ReferenceLoss;
}

/** Writes several checkpoints in one Python run (PyTorch takes seconds to start). */
export function writeCheckpoints(items: { layout: Layout; dir: string; dtype: 'float32' | 'float16' | 'bfloat16' }[]): void {
  const calls = items.map(({ layout, dir, dtype }) => `import_ref.write(${JSON.stringify(layout)}, ${JSON.stringify(dir)}, torch.${dtype}, 0)`);
  python(['import sys, torch', `sys.path.insert(0, ${JSON.stringify(join(repoRoot, 'bench', 'reference'))})`, 'import import_ref', ...calls].join('\n'));
}

/** Runs Python code with the reference's PyTorch (argv after the code). */
export function python(code: string, ...args: string[]): void {
  const result = spawnSync(referencePython(), ['-c', code, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python failed:\n${result.stderr}`);
}
