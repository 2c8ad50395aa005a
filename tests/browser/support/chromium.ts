// Finds Debian's chromium for the browser tests, installing it with apt when it is missing and
// we may (root, or password-less sudo): CI starts from a bare machine. Returns the executable,
// or the reason it cannot be had, which the tests report as their skip message.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'];

// From TOOLCHAIN.md: what Debian's chromium needs to run headless here.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function found(): string | undefined {
  const fromEnv = process.env['CHROMIUM_PATH'];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CANDIDATES.find((path) => existsSync(path));
}

function aptGet(prefix: string[], args: string[]): boolean {
  const [command, ...rest] = [...prefix, 'apt-get', ...args];
  const result = spawnSync(command!, rest, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 10 * 60_000 });
  if (result.status !== 0) console.error(`[browser tests] ${[...prefix, 'apt-get', ...args].join(' ')} failed: ${result.stderr?.trim().split('\n').slice(-3).join(' | ')}`);
  return result.status === 0;
}

export function ensureChromium(): { path: string } | { skip: string } {
  const present = found();
  if (present) return { path: present };
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!isRoot && !sudo) {
    return { skip: 'chromium is not installed and this user cannot install it (not root, no password-less sudo): run `apt-get install chromium` or set CHROMIUM_PATH' };
  }
  if (!existsSync('/usr/bin/apt-get')) return { skip: 'chromium is not installed and there is no apt-get here: install chromium and set CHROMIUM_PATH' };
  const prefix = sudo ? ['sudo', '-n'] : [];
  console.error('[browser tests] chromium not found: installing it with apt-get (about a minute)');
  if (!aptGet(prefix, ['install', '-y', '-q', 'chromium'])) {
    aptGet(prefix, ['update', '-q']);
    aptGet(prefix, ['install', '-y', '-q', 'chromium']);
  }
  const installed = found();
  return installed ? { path: installed } : { skip: 'chromium could not be installed with apt-get (see the errors above); set CHROMIUM_PATH to a Chromium binary' };
}
