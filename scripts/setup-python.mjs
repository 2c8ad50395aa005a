#!/usr/bin/env node
// The project's Jupyter environment: a virtualenv at .venv with JupyterLab 4 (and nbclient,
// for headless notebook runs), and the "Mamba Lab (TypeScript)" kernel spec installed in it.
// Idempotent: a healthy .venv is reused, so this takes about a second the second time.
// MAMBALAB_PYTHON picks the Python that creates the venv; MAMBALAB_SKIP_JUPYTER=1 skips all.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const venv = join(root, '.venv');
const windows = process.platform === 'win32';
const venvPython = join(venv, windows ? 'Scripts' : 'bin', windows ? 'python.exe' : 'python');
const REQUIREMENTS = ['jupyterlab>=4,<5', 'nbclient>=0.10', 'jupyter_client>=8'];
// A store of wheels (CI) answers at once; PyPI (a user's machine) needs no retries to work,
// and without these flags pip keeps retrying an index it cannot reach.
const PIP_FLAGS = ['--retries', '0', '--timeout', '5', '--disable-pip-version-check'];
const HEALTH_CHECK = [
  'import sys, jupyterlab, jupyter_client, nbclient',
  'assert sys.version_info >= (3, 9), sys.version',
  'assert jupyterlab.__version__.split(".")[0] == "4", jupyterlab.__version__',
  'print(jupyterlab.__version__)',
].join('\n');

function say(line) {
  console.log(`[setup-python] ${line}`);
}

function fail(message) {
  console.error(`[setup-python] ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  return spawnSync(command, args, { cwd: root, encoding: 'utf8', ...options });
}

function healthy() {
  if (!existsSync(venvPython)) return undefined;
  const check = run(venvPython, ['-c', HEALTH_CHECK]);
  return check.status === 0 ? check.stdout.trim() : undefined;
}

function basePython() {
  const candidates = process.env.MAMBALAB_PYTHON ? [process.env.MAMBALAB_PYTHON] : windows ? ['python', 'py'] : ['python3', 'python'];
  for (const python of candidates) {
    const probe = run(python, ['-c', 'import sys, venv; assert sys.version_info >= (3, 9); print(sys.version.split()[0])']);
    if (probe.status === 0) return { python, version: probe.stdout.trim() };
  }
  fail(`no Python ≥ 3.9 with venv found (tried ${candidates.join(', ')}); install one or set MAMBALAB_PYTHON, or set MAMBALAB_SKIP_JUPYTER=1 to skip Jupyter`);
}

if (process.env.MAMBALAB_SKIP_JUPYTER === '1') {
  say('MAMBALAB_SKIP_JUPYTER=1: skipping the Jupyter environment');
  process.exit(0);
}

let version = healthy();
if (version) {
  say(`reusing .venv (JupyterLab ${version})`);
} else {
  if (existsSync(venv)) {
    const works = existsSync(venvPython) && run(venvPython, ['-c', 'import pip']).status === 0;
    if (!works) {
      say('.venv is broken (no working python/pip): recreating it');
      rmSync(venv, { recursive: true, force: true });
    }
  }
  if (!existsSync(venv)) {
    const { python, version: pyVersion } = basePython();
    say(`creating .venv with ${python} (Python ${pyVersion})`);
    const created = run(python, ['-m', 'venv', venv], { stdio: 'inherit' });
    if (created.status !== 0) fail(`\`${python} -m venv .venv\` failed (on Debian/Ubuntu: apt install python3-venv)`);
  }
  say(`installing ${REQUIREMENTS.join(', ')}`);
  const pip = run(venvPython, ['-m', 'pip', 'install', ...PIP_FLAGS, ...REQUIREMENTS], { stdio: 'inherit' });
  if (pip.status !== 0) fail('pip install failed (see above); check your network or pip configuration and run npm install again');
  version = healthy();
  if (!version) fail('JupyterLab was installed but does not import; remove .venv and run npm install again');
  say(`JupyterLab ${version} ready in .venv`);
}

// The repo's package.json says "type": "module", which would make Node read the CommonJS
// scripts inside .venv (JupyterLab's bundled yarn.js) as ES modules: this stops that lookup.
writeFileSync(join(venv, 'package.json'), JSON.stringify({ private: true, type: 'commonjs' }, null, 2) + '\n');

// The kernel spec is rewritten every time: it names this checkout's node and mambalab paths.
const cli = join(root, 'kernel', 'dist', 'cli', 'main.js');
const spec = run(process.execPath, [cli, 'kernel', 'install', '--prefix', venv], { stdio: 'inherit' });
if (spec.status !== 0) fail('installing the kernel spec into .venv failed (see above)');
