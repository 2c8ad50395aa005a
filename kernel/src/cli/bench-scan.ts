// `mambalab bench scan`: the fused selective-scan kernels (forward, forward+backward) on the
// GPU, timed by native/build/mambalab_bench_scan; this relays its JSON line.
import { parseFlags } from './args.js';
import { checkCudaDevice, nativeBenchProgram, runNativeBench } from './native-bench.js';

const program = nativeBenchProgram('mambalab_bench_scan');

export const benchScanUsage = `  --device cuda              the scan bench runs on the GPU only
  --batch 8 --dim 1536 --len 2048 --dstate 16 --dtype bf16|fp32
  --checkpoint-every 64 --warmup 10 --iters 100 --sets 3
  --deterministic 0|1        0 (default, as training): atomic dB, dC sums; 1: bit-identical
  --segments 0               parts each sequence is scanned in side by side: 0 (default, as
                             training) lets the scan choose (long sequences with few channels
                             are split), 1 scans each sequence whole, N asks for N parts`;

const PASSED_ON = ['batch', 'dim', 'len', 'dstate', 'dtype', 'checkpoint-every', 'deterministic', 'warmup', 'iters', 'sets', 'segments'] as const;

export async function benchScan(argv: string[], log: (line: string) => void): Promise<unknown> {
  const options: Record<string, { type: 'string'; default?: string }> = { device: { type: 'string', default: 'cuda' } };
  for (const name of PASSED_ON) options[name] = { type: 'string' };
  const f = parseFlags('bench scan', argv, options).values as Record<string, string | undefined>;
  checkCudaDevice('scan', f.device);
  const args = PASSED_ON.flatMap((name) => (f[name] === undefined ? [] : [`--${name}`, f[name]]));
  return runNativeBench('scan', program, args, log)[0];
}
