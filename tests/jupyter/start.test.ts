// `npm start` (scripts/start.mjs): JupyterLab on 127.0.0.1 with token authentication, the
// quick-start notebook and our kernel spec.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ensureJupyter, root } from '../support/jupyter.js';
import { scratchDir } from '../helpers.js';

test('npm start serves JupyterLab on 127.0.0.1 with a token, the quick-start notebook and the Mamba Lab kernel', async (t) => {
  const env = { ...ensureJupyter(), JUPYTER_RUNTIME_DIR: scratchDir('mambalab-runtime-') };
  const port = 20000 + Math.floor(Math.random() * 20000);
  const lab = spawn(process.execPath, [join(root, 'scripts', 'start.mjs'), '--no-browser', `--ServerApp.port=${port}`, '--ServerApp.port_retries=50'], {
    cwd: root,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  lab.stdout.on('data', (d) => (log += d));
  lab.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => lab.on('exit', resolve));
  t.after(async () => {
    process.kill(-lab.pid!, 'SIGTERM'); // start.mjs and the JupyterLab it started (one process group)
    await exited;
  });

  const deadline = Date.now() + 120_000;
  let url: URL | undefined;
  while (!url && Date.now() < deadline) {
    const match = /(http:\/\/127\.0\.0\.1:\d+)\/lab\S*\?token=([0-9a-f]+)/.exec(log);
    if (match) url = new URL(`${match[1]}/?token=${match[2]}`);
    else await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(url, `no JupyterLab URL with a token on 127.0.0.1 within 2 minutes:\n${log}`);
  const token = url.searchParams.get('token')!;
  const api = (path: string, withToken: boolean) => fetch(`${url!.origin}${path}`, { headers: withToken ? { Authorization: `token ${token}` } : {} });

  assert.equal((await api('/api/kernelspecs', false)).status, 403, 'the API refuses requests without the token');
  const specs = (await (await api('/api/kernelspecs', true)).json()) as { kernelspecs: Record<string, { spec: { display_name: string } }> };
  assert.equal(specs.kernelspecs.mambalab?.spec.display_name, 'Mamba Lab (TypeScript)');
  const notebook = await api('/api/contents/notebooks/01-quickstart.ipynb?content=0', true);
  assert.equal(notebook.status, 200);
  // What the browser is sent to: the page JupyterLab writes for opening the file it was given.
  const opener = readdirSync(env.JUPYTER_RUNTIME_DIR).find((f) => /^jpserver-file-to-run-\d+-open\.html$/.test(f));
  assert.ok(opener, `no file-to-run page in ${env.JUPYTER_RUNTIME_DIR}`);
  assert.match(readFileSync(join(env.JUPYTER_RUNTIME_DIR, opener), 'utf8'), /url=http:\/\/127\.0\.0\.1:\d+\/lab\/tree\/notebooks\/01-quickstart\.ipynb\?token=/);
});
