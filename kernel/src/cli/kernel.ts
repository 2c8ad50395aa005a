// `mambalab kernel install|start`: the Jupyter kernel "Mamba Lab (TypeScript)", a tslab
// kernel with mambalab importable in every cell, live training outputs and interrupts that
// stop training at a step boundary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MambalabError } from '../errors.js';
import { parseFlags } from './args.js';
import { startKernel } from './kernel-start.js';

export const KERNEL_NAME = 'mambalab';
export const DISPLAY_NAME = 'Mamba Lab (TypeScript)';

export const usage = `mambalab kernel install [--user | --sys-prefix | --prefix DIR] [--python PY] [--name NAME]
  installs the Jupyter kernel spec "${DISPLAY_NAME}" (default: --user)
  --user          into your Jupyter data directory ($JUPYTER_DATA_DIR or the platform's default)
  --sys-prefix    into the prefix of --python (a virtualenv or conda env)
  --prefix DIR    into DIR/share/jupyter/kernels/
  --python PY     the Python whose sys.prefix --sys-prefix means (default python3)
  --name NAME     the kernel spec's name (default ${KERNEL_NAME})
mambalab kernel start CONNECTION_FILE
  runs the kernel (Jupyter calls this from the spec)`;

/** The mambalab package's directory (kernel/), from src/cli or dist/cli alike. */
export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where Jupyter looks for per-user data, as jupyter_core computes it. */
export function userDataDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return process.env.JUPYTER_DATA_DIR;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Jupyter');
  if (process.platform === 'win32') return join(process.env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'jupyter');
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'jupyter');
}

function pythonPrefix(python: string): string {
  const run = spawnSync(python, ['-c', 'import sys; print(sys.prefix)'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new MambalabError(`kernel install --sys-prefix: cannot run ${python} (${run.error?.message ?? run.stderr.trim()}); pass --python PATH`);
  }
  return run.stdout.trim();
}

export function kernelSpec(): Record<string, unknown> {
  const main = join(packageDir, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new MambalabError(`kernel: ${main} is missing; run \`npm install\` (it builds mambalab) first`);
  return {
    argv: [process.execPath, main, 'kernel', 'start', '{connection_file}'],
    display_name: DISPLAY_NAME,
    language: 'typescript',
    // tslab answers no interrupt_request: Jupyter sends SIGINT, which the kernel handles.
    interrupt_mode: 'signal',
    metadata: { mambalab: { package: packageDir } },
  };
}

/** Writes <kernels dir>/<name>/kernel.json; returns the spec's directory. */
export function installKernelSpec(kernelsDir: string, name = KERNEL_NAME): string {
  if (!/^[\w.-]+$/.test(name)) throw new MambalabError(`kernel install --name: letters, digits, '.', '_' and '-' only, got '${name}'`);
  const dir = join(kernelsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kernel.json'), JSON.stringify(kernelSpec(), null, 2) + '\n');
  return dir;
}

async function install(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('kernel install', argv, {
    user: { type: 'boolean', default: false },
    'sys-prefix': { type: 'boolean', default: false },
    prefix: { type: 'string' },
    python: { type: 'string', default: process.platform === 'win32' ? 'python' : 'python3' },
    name: { type: 'string', default: KERNEL_NAME },
  });
  if (positionals.length > 0) throw new MambalabError(`kernel install: unexpected argument '${positionals[0]}'`);
  const chosen = [f.user, f['sys-prefix'], f.prefix !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new MambalabError('kernel install: choose one of --user, --sys-prefix and --prefix DIR');
  const prefix = f.prefix !== undefined ? resolve(f.prefix) : f['sys-prefix'] ? pythonPrefix(f.python!) : undefined;
  const kernelsDir = prefix !== undefined ? join(prefix, 'share', 'jupyter', 'kernels') : join(userDataDir(), 'kernels');
  const dir = installKernelSpec(kernelsDir, f.name);
  process.stdout.write(`installed kernel spec '${f.name}' (${DISPLAY_NAME}) in ${dir}\n`);
}

export async function kernel(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'install') return install(rest);
  if (sub === 'start') {
    if (rest.length !== 1) throw new MambalabError('kernel start: expected one argument, the connection file Jupyter passes');
    return startKernel(rest[0]!);
  }
  throw new MambalabError(`kernel: expected 'install' or 'start', got ${sub === undefined ? 'nothing' : `'${sub}'`}\n${usage}`);
}
