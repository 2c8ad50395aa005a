// The project's Jupyter environment for tests: created (or reused) by scripts/setup-python.mjs,
// as `npm install` does, and used with our kernel spec ahead of any the user installed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const venvBin = join(root, '.venv', process.platform === 'win32' ? 'Scripts' : 'bin');
export const python = join(venvBin, process.platform === 'win32' ? 'python.exe' : 'python');

let ready = false;

/** Runs the setup script (a second when .venv is healthy); returns the environment to run Jupyter in. */
export function ensureJupyter(): NodeJS.ProcessEnv {
  if (!ready) {
    const setup = spawnSync(process.execPath, [join(root, 'scripts', 'setup-python.mjs')], { encoding: 'utf8', timeout: 10 * 60_000 });
    assert.equal(setup.status, 0, `scripts/setup-python.mjs failed:\n${setup.stdout}\n${setup.stderr}`);
    ready = true;
  }
  return {
    ...process.env,
    JUPYTER_PATH: [join(root, '.venv', 'share', 'jupyter'), process.env.JUPYTER_PATH].filter(Boolean).join(delimiter),
    PATH: [venvBin, process.env.PATH].join(delimiter),
  };
}

export interface DriverMessage {
  msg_type: string;
  content: Record<string, unknown> & { data?: Record<string, unknown>; transient?: { display_id?: string }; name?: string; text?: string };
  date: string;
}

export interface DriverStep {
  op: string;
  reply?: { status: string; execution_count?: number };
  messages?: DriverMessage[];
  interrupt_to_idle_s?: number;
  alive?: boolean;
  seconds?: number;
}

/** Drives one kernel through tests/jupyter/driver.py (jupyter_client); see there for the script. */
export async function runDriver(script: { cwd: string; steps: object[]; kernel?: string }, timeoutMs = 5 * 60_000): Promise<{ kernel_info: Record<string, unknown>; steps: DriverStep[] }> {
  const env = ensureJupyter();
  const child = spawn(python, [join(root, 'tests', 'jupyter', 'driver.py')], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(JSON.stringify(script));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `driver.py exited with ${code}:\n${stderr}`);
  return JSON.parse(stdout);
}

/** Text a step's messages wrote to a stream (stdout or stderr). */
export function streamText(step: DriverStep, name: 'stdout' | 'stderr'): string {
  return (step.messages ?? []).filter((m) => m.msg_type === 'stream' && m.content.name === name).map((m) => m.content.text).join('');
}
