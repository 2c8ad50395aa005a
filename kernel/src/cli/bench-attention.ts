// `mambalab bench attention`: the causal attention kernels (forward, forward+backward) on the
// GPU, timed by native/build/mambalab_bench_attention, one run per sequence length; this
// relays the JSON line it prints for each shape. bench/reference/attention_reference.py times
// PyTorch's SDPA at the same shapes.
import { MambalabError } from '../errors.js';
import { choiceFlag, intFlag, parseFlags } from './args.js';
import { checkCudaDevice, nativeBenchProgram, runNativeBench } from './native-bench.js';

const program = nativeBenchProgram('mambalab_bench_attention');

export const benchAttentionUsage = `  --device cuda              the attention bench runs on the GPU only
  --batch 8 --heads 8 --kv-heads H --head-dim 64   (kv heads default to the heads: multi-head)
  --len 1024,2048,4096,8192  sequence lengths, one run and one JSON line each
  --dtype bf16|fp32          (default bf16)
  --warmup N --iters N       the program's own defaults unless given`;

const DEFAULT_LENGTHS = [1024, 2048, 4096, 8192];

/** The program's arguments, one list per sequence length (exported for tests). */
export function attentionBenchRuns(argv: string[]): string[][] {
  const { values: f } = parseFlags('bench attention', argv, {
    device: { type: 'string', default: 'cuda' },
    batch: { type: 'string' },
    heads: { type: 'string' },
    'kv-heads': { type: 'string' },
    'head-dim': { type: 'string' },
    len: { type: 'string' },
    dtype: { type: 'string' },
    warmup: { type: 'string' },
    iters: { type: 'string' },
  });
  checkCudaDevice('attention', f.device);
  const heads = intFlag('heads', f.heads, 8, 1);
  const kvHeads = intFlag('kv-heads', f['kv-heads'], heads, 1);
  if (heads % kvHeads !== 0) throw new MambalabError(`--kv-heads ${kvHeads}: expected a divisor of --heads (${heads})`);
  const lengths = f.len === undefined ? DEFAULT_LENGTHS : f.len.split(',').map((l) => intFlag('len', l, 0, 1));
  // Every shape is passed explicitly, so ours and the PyTorch reference time the same one.
  const shape = [
    ['--batch', intFlag('batch', f.batch, 8, 1)],
    ['--heads', heads],
    ['--kv-heads', kvHeads],
    ['--head-dim', intFlag('head-dim', f['head-dim'], 64, 1)],
    ['--dtype', choiceFlag('dtype', f.dtype, ['bf16', 'fp32'], 'bf16')],
    ...(f.warmup === undefined ? [] : [['--warmup', intFlag('warmup', f.warmup, 0)]]),
    ...(f.iters === undefined ? [] : [['--iters', intFlag('iters', f.iters, 0, 1)]]),
  ].flat();
  return lengths.map((len) => [...shape, '--len', len].map(String));
}

export async function benchAttention(argv: string[], log: (line: string) => void): Promise<unknown[]> {
  return attentionBenchRuns(argv).flatMap((args) => runNativeBench('attention', program, args, log));
}
