// `mambalab bench scan`: the fused selective-scan kernels (forward, forward+backward) on the
// GPU. The timing lives in a native program (native/bench, built with the CUDA backend) so
// it also runs on GPU hosts without Node; this relays its JSON line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MambalabError } from '../errors.js';
import { parseFlags } from './args.js';

const program = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'mambalab_bench_scan');

export const benchScanUsage = `  --device cuda              the scan bench runs on the GPU only
  --batch 8 --dim 1536 --len 2048 --dstate 16 --dtype bf16|fp32
  --checkpoint-every 64 --warmup 10 --iters 100 --sets 3
  --deterministic 0|1        0 (default, as training): atomic dB, dC sums; 1: bit-identical`;

const PASSED_ON = ['batch', 'dim', 'len', 'dstate', 'dtype', 'checkpoint-every', 'deterministic', 'warmup', 'iters', 'sets'] as const;

export async function benchScan(argv: string[], log: (line: string) => void): Promise<unknown> {
  const options: Record<string, { type: 'string'; default?: string }> = { device: { type: 'string', default: 'cuda' } };
  for (const name of PASSED_ON) options[name] = { type: 'string' };
  const f = parseFlags('bench scan', argv, options).values as Record<string, string | undefined>;
  if (f.device !== 'cuda' && f.device !== 'auto') throw new MambalabError(`bench scan: --device ${f.device}: the scan bench times the CUDA kernels; use --device cuda`);
  if (!existsSync(program)) throw new MambalabError(`bench scan: ${program} is missing: this build has no CUDA backend (no CUDA compiler was found at npm install)`);
  const args = PASSED_ON.flatMap((name) => (f[name] === undefined ? [] : [`--${name}`, f[name]]));
  log(`bench scan: ${program} ${args.join(' ')}`);
  const run = spawnSync(program, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new MambalabError(`bench scan failed (exit ${run.status}): ${run.stderr.trim()}`);
  const line = run.stdout.trim();
  // Without a GPU the program says why on stderr and prints no result.
  if (line === '') throw new MambalabError(`bench scan: no GPU (${run.stderr.trim() || 'the program found none'})`);
  return JSON.parse(line) as unknown;
}
