// Benchmarks timed by native programs (native/bench, built with the CUDA backend beside the
// addon) so that they also run on GPU hosts without Node: finding the program, running it and
// reading the JSON lines it prints.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MambalabError } from '../errors.js';

/** native/build/<name>, where cmake puts the bench programs. */
export function nativeBenchProgram(name: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', name);
}

/** `bench <bench> --device`: the native benches time CUDA kernels, on the GPU only. */
export function checkCudaDevice(bench: string, device: string | undefined): void {
  if (device !== 'cuda' && device !== 'auto') throw new MambalabError(`bench ${bench}: --device ${device}: the ${bench} bench times the CUDA kernels; use --device cuda`);
}

/** Runs the program and returns the JSON lines it printed, one result each. */
export function runNativeBench(bench: string, program: string, args: string[], log: (line: string) => void): unknown[] {
  if (!existsSync(program)) throw new MambalabError(`bench ${bench}: ${program} is missing: this build has no CUDA backend (no CUDA compiler was found at npm install)`);
  log(`bench ${bench}: ${program} ${args.join(' ')}`);
  const run = spawnSync(program, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new MambalabError(`bench ${bench} failed (exit ${run.status}): ${run.stderr.trim()}`);
  const lines = run.stdout.split('\n').filter((line) => line.trim() !== '');
  // Without a GPU the program says why on stderr and prints no result.
  if (lines.length === 0) throw new MambalabError(`bench ${bench}: no GPU (${run.stderr.trim() || 'the program found none'})`);
  return lines.map((line) => JSON.parse(line) as unknown);
}
