// The Python of bench/reference/.venv (PyTorch, safetensors, numpy), created on first use.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { repoRoot } from '../../helpers.js';

let python: string | undefined;

export function referencePython(): string {
  if (python) return python;
  const setup = spawnSync(process.execPath, [join(repoRoot, 'bench', 'reference', 'setup.mjs')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000,
  });
  if (setup.status !== 0) throw new Error(`bench/reference/setup.mjs failed (exit ${setup.status}); see its output above`);
  python = setup.stdout.trim().split('\n').at(-1)!;
  return python;
}
