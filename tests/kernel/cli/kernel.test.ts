// `mambalab kernel install`: the spec lands where each flag says, and Jupyter lists it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ensureJupyter, root, venvBin } from '../../support/jupyter.js';
import { scratchDir } from '../../helpers.js';

const cli = join(root, 'kernel', 'src', 'cli', 'main.ts');

function mambalab(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, encoding: 'utf8', env });
}

function readSpec(kernelsDir: string): { argv: string[]; display_name: string; language: string; interrupt_mode: string } {
  return JSON.parse(readFileSync(join(kernelsDir, 'mambalab', 'kernel.json'), 'utf8'));
}

test('--prefix writes a spec that starts this node on the built mambalab, and Jupyter lists it', () => {
  const prefix = scratchDir('mambalab-prefix-');
  const run = mambalab(['kernel', 'install', '--prefix', prefix]);
  assert.equal(run.status, 0, run.stderr);
  const kernels = join(prefix, 'share', 'jupyter', 'kernels');
  assert.match(run.stdout, /installed kernel spec 'mambalab' \(Mamba Lab \(TypeScript\)\) in /);
  const spec = readSpec(kernels);
  assert.equal(spec.display_name, 'Mamba Lab (TypeScript)');
  assert.equal(spec.language, 'typescript');
  assert.equal(spec.interrupt_mode, 'signal');
  assert.equal(spec.argv[0], process.execPath);
  assert.ok(existsSync(spec.argv[1]!), `${spec.argv[1]} does not exist`);
  assert.deepEqual(spec.argv.slice(2), ['kernel', 'start', '{connection_file}']);

  const env = { ...ensureJupyter(), JUPYTER_PATH: join(prefix, 'share', 'jupyter') };
  const list = spawnSync(join(venvBin, 'jupyter'), ['kernelspec', 'list', '--json'], { encoding: 'utf8', env });
  assert.equal(list.status, 0, list.stderr);
  const listed = JSON.parse(list.stdout).kernelspecs.mambalab;
  assert.equal(listed.resource_dir, join(kernels, 'mambalab'));
  assert.equal(listed.spec.display_name, 'Mamba Lab (TypeScript)');
});

test('--user (the default) writes into the Jupyter data directory', () => {
  const data = scratchDir('mambalab-user-');
  const run = mambalab(['kernel', 'install'], { ...process.env, JUPYTER_DATA_DIR: data });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(readSpec(join(data, 'kernels')).display_name, 'Mamba Lab (TypeScript)');
  const named = mambalab(['kernel', 'install', '--user', '--name', 'mambalab-dev'], { ...process.env, JUPYTER_DATA_DIR: data });
  assert.equal(named.status, 0, named.stderr);
  assert.ok(existsSync(join(data, 'kernels', 'mambalab-dev', 'kernel.json')));
});

test('--sys-prefix writes into the prefix of --python (a virtualenv)', () => {
  const venv = join(scratchDir('mambalab-venv-'), 'env');
  const made = spawnSync('python3', ['-m', 'venv', '--without-pip', venv], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const run = mambalab(['kernel', 'install', '--sys-prefix', '--python', join(venv, 'bin', 'python')]);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(readSpec(join(venv, 'share', 'jupyter', 'kernels')).display_name, 'Mamba Lab (TypeScript)');
});

test('bad flags and subcommands say what is wrong', () => {
  const both = mambalab(['kernel', 'install', '--user', '--prefix', '/tmp/x']);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /choose one of --user, --sys-prefix and --prefix DIR/);
  const python = mambalab(['kernel', 'install', '--sys-prefix', '--python', '/no/such/python']);
  assert.equal(python.status, 2);
  assert.match(python.stderr, /cannot run \/no\/such\/python/);
  const name = mambalab(['kernel', 'install', '--prefix', '/tmp/x', '--name', 'a/b']);
  assert.match(name.stderr, /--name: letters, digits/);
  const sub = mambalab(['kernel', 'frobnicate']);
  assert.equal(sub.status, 2);
  assert.match(sub.stderr, /kernel: expected 'install' or 'start', got 'frobnicate'/);
  const start = mambalab(['kernel', 'start']);
  assert.match(start.stderr, /kernel start: expected one argument, the connection file/);
  const help = mambalab(['--help']);
  assert.match(help.stdout, /kernel {5}install or start the Jupyter kernel/);
});
