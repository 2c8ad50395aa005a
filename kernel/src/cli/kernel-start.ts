// Starts the kernel: tslab with mambalab resolvable from any notebook directory, the engine
// loaded once, and the notebook hooks (live fits, interrupts) installed.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { installKernelHooks } from '../display/kernel-hooks.js';
import { native } from '../native.js';

const require = createRequire(import.meta.url);
const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PACKAGE = 'mambalab';

/** The node_modules directory that holds this package (the workspace's, or the one it was installed into). */
function nodeModulesWithPackage(): string | undefined {
  for (let dir = dirname(packageDir); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules', PACKAGE, 'package.json'))) return join(dir, 'node_modules');
    if (dir.endsWith(`${sep}node_modules`) && existsSync(join(dir, PACKAGE))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

function foundFrom(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', PACKAGE, 'package.json'))) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * Lets `import ... from 'mambalab'` work in a notebook anywhere. At run time Node finds it
 * through NODE_PATH; tslab's type checker (TypeScript, node10 resolution) ignores NODE_PATH
 * and looks in <notebook dir>/node_modules, so there we show it our package, the way tslab
 * shows itself to notebooks.
 */
function makePackageResolvable(cwd: string): void {
  const nodeModules = nodeModulesWithPackage();
  if (nodeModules) {
    process.env.NODE_PATH = [nodeModules, ...(process.env.NODE_PATH ?? '').split(delimiter).filter(Boolean)].join(delimiter);
    (require('node:module') as { _initPaths(): void })._initPaths();
  }
  if (foundFrom(cwd)) return;
  const tslabRequire = createRequire(require.resolve('tslab/package.json'));
  const sys = (tslabRequire('@tslab/typescript-for-tslab') as { sys: Record<string, (...args: never[]) => unknown> }).sys;
  const shown = join(cwd, 'node_modules', PACKAGE);
  const forward = (path: string): string => (path === shown || path.startsWith(shown + sep) || path.startsWith(shown + '/') ? packageDir + path.slice(shown.length) : path);
  for (const name of ['fileExists', 'directoryExists', 'readFile', 'realpath', 'getDirectories', 'readDirectory']) {
    const original = sys[name] as ((path: string, ...rest: unknown[]) => unknown) | undefined;
    if (!original) continue;
    sys[name] = ((path: string, ...rest: unknown[]) => original.call(sys, forward(path), ...rest)) as never;
  }
}

export async function startKernel(connectionFile: string): Promise<void> {
  makePackageResolvable(process.cwd());
  try {
    native();
  } catch {
    // Reported in the first cell that creates a model, with how to fix it.
  }
  const tslab = require('tslab/dist/main.js') as {
    startKernel(options: { configPath: string; enableFindLocal: boolean; jsKernel: boolean; globalVersion: string }): void;
  };
  // enableFindLocal: false keeps this tslab (the one mambalab hooks into) even where a
  // notebook directory has its own.
  tslab.startKernel({ configPath: connectionFile, enableFindLocal: false, jsKernel: false, globalVersion: '' });
  installKernelHooks();
}
