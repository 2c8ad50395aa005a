// A real JupyterLab 4.6.4 server for the browser tests: from the project's .venv (created here
// if missing, as npm install will once the venv step lands), with our prebuilt extension linked
// into it, on a free port of 127.0.0.1, with its own config, data and settings directories so
// nothing of the user's leaks in or out.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..', '..');
const venv = join(repo, '.venv');
const EXTENSION = join(venv, 'share', 'jupyter', 'labextensions', 'mambalab-labextension', 'package.json');

function run(command: string, args: string[], what: string): void {
  const result = spawnSync(command, args, { cwd: repo, stdio: 'inherit', timeout: 10 * 60_000 });
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status}): ${command} ${args.join(' ')}`);
}

/** The venv with JupyterLab and our extension in it; creates or links what is missing. */
export function ensureJupyterLab(): void {
  if (!existsSync(join(venv, 'bin', 'jupyter-lab'))) {
    console.error('[browser tests] no JupyterLab in .venv: creating it (pip, about 20 s)');
    if (!existsSync(join(venv, 'bin', 'python'))) run('python3', ['-m', 'venv', venv], 'creating .venv');
    // --retries 0 --timeout 5: where PyPI is unreachable pip falls through to the configured wheel store at once.
    run(join(venv, 'bin', 'pip'), ['install', '--retries', '0', '--timeout', '5', '-q', 'jupyterlab==4.6.4'], 'installing JupyterLab');
  }
  if (!existsSync(join(repo, 'labextension', 'prebuilt', 'package.json'))) {
    throw new Error('the extension is not built (labextension/prebuilt): run `npm install` or `npm run build --workspace labextension`');
  }
  if (!existsSync(EXTENSION)) run(process.execPath, [join(repo, 'labextension', 'scripts', 'link.mjs')], 'linking the extension');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface LabServer {
  url: string;
  /** the server's root directory: files put here show in the file browser */
  root: string;
  stop(): Promise<void>;
}

export async function startJupyterLab(): Promise<LabServer> {
  const home = mkdtempSync(join(tmpdir(), 'mambalab-lab-'));
  const root = join(home, 'root');
  for (const dir of ['root', 'config', 'data', 'runtime', 'settings', 'workspaces']) mkdirSync(join(home, dir));
  // No "get Jupyter news?" toast over the outputs (and no fetch from the internet).
  const notification = join(home, 'settings', '@jupyterlab', 'apputils-extension');
  mkdirSync(notification, { recursive: true });
  writeFileSync(join(notification, 'notification.jupyterlab-settings'), JSON.stringify({ fetchNews: 'false' }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(
    join(venv, 'bin', 'jupyter-lab'),
    [
      '--no-browser',
      '--allow-root', // CI runs as root; harmless otherwise
      '--ServerApp.ip=127.0.0.1',
      `--ServerApp.port=${port}`,
      '--ServerApp.port_retries=0',
      '--IdentityProvider.token=',
      '--ServerApp.password=',
      '--ServerApp.disable_check_xsrf=True',
      '--LabApp.expose_app_in_browser=True',
      `--ServerApp.root_dir=${root}`,
      `--LabApp.user_settings_dir=${join(home, 'settings')}`,
      `--LabApp.workspaces_dir=${join(home, 'workspaces')}`,
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, JUPYTER_CONFIG_DIR: join(home, 'config'), JUPYTER_DATA_DIR: join(home, 'data'), JUPYTER_RUNTIME_DIR: join(home, 'runtime') },
    },
  );
  let log = '';
  server.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (server.exitCode === null) {
      // Graceful first: the server shuts its kernels down; then make sure the group is gone.
      await fetch(`${url}/api/shutdown`, { method: 'POST' }).catch(() => undefined);
      const timer = setTimeout(() => {
        try {
          process.kill(-server.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(home, { recursive: true, force: true });
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`JupyterLab exited with ${server.exitCode}:\n${log}`);
    const ok = await fetch(`${url}/api/status`).then((response) => response.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`JupyterLab did not answer on ${url} within 90 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { url, root, stop };
}
