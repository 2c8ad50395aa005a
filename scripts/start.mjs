#!/usr/bin/env node
// `npm start`: JupyterLab from the project's .venv, opened on the quick-start notebook, on
// 127.0.0.1 with Jupyter's default token authentication. Extra arguments go to `jupyter lab`
// (e.g. `npm start -- --no-browser --port 8899`).
import { spawn, spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const windows = process.platform === 'win32';
const jupyter = join(root, '.venv', windows ? 'Scripts' : 'bin', windows ? 'jupyter.exe' : 'jupyter');

// Makes sure .venv and the kernel spec are there (a second or so when they are).
const setup = spawnSync(process.execPath, [join(root, 'scripts', 'setup-python.mjs')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

const args = ['lab', join('notebooks', '01-quickstart.ipynb'), '--ServerApp.ip=127.0.0.1', `--ServerApp.root_dir=${root}`];
// Jupyter refuses to run as root without this (containers, CI machines).
if (process.getuid?.() === 0) args.push('--allow-root');
args.push(...process.argv.slice(2));
// Our kernel spec first, before any other "mambalab" spec in the user's Jupyter directories.
const jupyterPath = [join(root, '.venv', 'share', 'jupyter'), process.env.JUPYTER_PATH].filter(Boolean).join(delimiter);

const lab = spawn(jupyter, args, { cwd: root, stdio: 'inherit', env: { ...process.env, JUPYTER_PATH: jupyterPath } });
// Ctrl-C reaches JupyterLab directly (same terminal); it asks to confirm and shuts down.
process.on('SIGINT', () => {});
for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => lab.kill(signal));
lab.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
