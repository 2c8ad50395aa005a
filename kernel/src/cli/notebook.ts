// `mambalab notebook run`: a notebook executed headlessly on the "Mamba Lab (TypeScript)"
// kernel, driven from Node (no Python Jupyter needed), with papermill-style parameters.
import { dirname, resolve } from 'node:path';

import { MambalabError } from '../errors.js';
import { readNotebook, writeNotebook } from '../notebook/ipynb.js';
import { parseParameters } from '../notebook/params.js';
import { numberFlag, parseFlags } from './args.js';
import { kernelSpec } from './kernel.js';

export const usage = `mambalab notebook run NOTEBOOK.ipynb [--out OUT.ipynb] [--param key=value ...] [--timeout S]
  runs every code cell in order on a new "Mamba Lab (TypeScript)" kernel, in the notebook's
  directory, printing a line per cell; stops at the first cell that fails (exit code 2, its
  error on stderr)
  --out FILE        write the notebook with this run's outputs to FILE (written whole or not at
                    all; also when a cell failed, to show its error). Without --out nothing is
                    written: the input notebook is only replaced when --out names it
  --param key=value a value for the cell tagged "parameters" (repeatable): injected after it in
                    a cell tagged "injected-parameters"; numbers and true/false stay numbers and
                    booleans, anything else is a string
  --timeout S       seconds a cell may run; past it the kernel is killed (default: no limit)`;

/**
 * The kernel spec's argv without its {connection_file}: the compiled kernel, which is also
 * what `import 'mambalab'` in a cell loads, so its live-output hooks reach the cells' trainers.
 */
function kernelCommand(): string[] {
  return (kernelSpec().argv as string[]).slice(0, -1);
}

async function run(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('notebook run', argv, {
    out: { type: 'string' },
    param: { type: 'string', multiple: true, default: [] },
    timeout: { type: 'string' },
  });
  if (positionals.length !== 1) throw new MambalabError(`notebook run: expected one notebook, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}\n${usage}`);
  const input = resolve(positionals[0]!);
  const parameters = parseParameters(f.param ?? []);
  const timeoutS = numberFlag('timeout', f.timeout, 0);
  const notebook = readNotebook(input);
  const log = (line: string) => process.stdout.write(line + '\n');
  log(`running ${input}${Object.keys(parameters).length > 0 ? ` with ${JSON.stringify(parameters)}` : ''}`);
  // Loaded here, not at the CLI's start: zeromq's native addon is only needed to run a notebook
  // (the CLI bundle carried to the GPU host runs other commands without it).
  const { runNotebook } = await import('../notebook/runner.js');
  const result = await runNotebook(notebook, { kernelCommand: kernelCommand(), cwd: dirname(input), parameters, timeoutS, log });
  if (f.out !== undefined) {
    writeNotebook(resolve(f.out), result.notebook);
    log(`wrote ${resolve(f.out)}`);
  }
  const failure = result.failure;
  if (failure) {
    const traceback = failure.traceback.length > 0 ? `\n${failure.traceback.join('\n')}` : '';
    throw new MambalabError(`notebook run: cell ${failure.cell} failed: ${failure.ename}: ${failure.evalue}${traceback}`);
  }
}

export async function notebook(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'run') return run(rest);
  throw new MambalabError(`notebook: expected 'run', got ${sub === undefined ? 'nothing' : `'${sub}'`}\n${usage}`);
}
