// `mambalab bench generate`: ms per generated token at batch 1, greedy (or sampled, with
// --temperature: the host's sampler in the loop), after prompts of several lengths: the
// recurrent decode step's cost, which should not grow with the length.
// On the GPU the mamba_ssm checkpoints' shapes (mamba-130m/370m/1.4b) and BlackMamba 1.5B, as
// ../shared/anchors/generate_anchor.py times mamba_ssm's generate(cg=True); on the CPU the tiny preset.
// transformer-350m and jamba-410m-1.6b (asked for by name) read a KV cache that grows with the
// length: the cost BlackMamba's inference figure sets Mamba against.
import { DEVICES, PRECISIONS, type ModelConfig } from '../models/config.js';
import { chooseDevice } from '../models/device.js';
import { createModel } from '../models/model.js';
import { preset } from '../models/presets.js';
import { native } from '../native.js';
import { choiceFlag, intFlag, numberFlag, parseFlags } from './args.js';
import { MambalabError } from '../errors.js';

/** The shapes compared with mamba_ssm: GPT-NeoX's vocabulary (50277, padded to 50280). */
const NEOX = { vocabSize: 50277, padVocabMultiple: 8 };
export const GENERATE_SHAPES: Record<string, () => Partial<ModelConfig>> = {
  'mamba-130m': () => ({ ...NEOX, dModel: 768, pattern: 'M*24' }),
  'mamba-370m': () => ({ ...NEOX, dModel: 1024, pattern: 'M*48' }),
  'mamba-1.4b': () => ({ ...NEOX, dModel: 2048, pattern: 'M*48' }),
  'blackmamba-1.5b': () => ({ ...preset('blackmamba', '340m-1.5b').config, ...NEOX }),
  // mamba-370m's width with attention and an MLP per block instead (rotary positions, 16 heads).
  'transformer-350m': () => ({ ...NEOX, dModel: 1024, pattern: 'AF*24', nHeads: 16, dFF: 4096, rope: true }),
  'jamba-410m-1.6b': () => ({ ...preset('jamba', '410m-1.6b').config, ...NEOX }),
  tiny: () => ({ ...preset('mamba', 'tiny').config, ...NEOX }),
};

export const benchGenerateUsage = `  --model NAME      ${Object.keys(GENERATE_SHAPES).join(' | ')} (default: on CUDA the first four, on the CPU tiny)
  --lengths L,L     prompt lengths (default on CUDA 128,512,1024,2048,4096,8192; on the CPU 128,512)
  --tokens N        generated tokens timed per length (default 64), after --warmup N (default 8)
  --temperature T   0 (the default) is greedy, the id picked on the device; above 0 samples on the host,
                    with --top-k K and --top-p P (default off), seed 0
  --device DEV      cpu | cuda | auto (default cpu); --precision bf16 | fp32 on CUDA (default bf16)`;

export async function benchGenerate(argv: string[], log: (line: string) => void): Promise<unknown[]> {
  const { values: f } = parseFlags('bench generate', argv, {
    model: { type: 'string' },
    lengths: { type: 'string' },
    tokens: { type: 'string' },
    warmup: { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
  });
  const device = choiceFlag('device', f.device, DEVICES, 'cpu');
  const precision = choiceFlag('precision', f.precision, PRECISIONS, 'bf16');
  const gpu = native().info().gpu;
  const onGpu = chooseDevice({ device, dtype: 'float32' }, gpu).device === 'cuda';
  const names = f.model ? [f.model] : onGpu ? ['mamba-130m', 'mamba-370m', 'mamba-1.4b', 'blackmamba-1.5b'] : ['tiny'];
  const lengths = (f.lengths ?? (onGpu ? '128,512,1024,2048,4096,8192' : '128,512')).split(',').map((l) => intFlag('lengths', l, 0, 1));
  const tokens = intFlag('tokens', f.tokens, 64, 1);
  const warmup = intFlag('warmup', f.warmup, 8, 0);
  const sampling = {
    temperature: numberFlag('temperature', f.temperature, 0),
    topK: intFlag('top-k', f['top-k'], 0),
    topP: numberFlag('top-p', f['top-p'], 1),
  };
  const results: unknown[] = [];
  for (const name of names) {
    const shape = GENERATE_SHAPES[name];
    if (!shape) throw new MambalabError(`--model: expected one of ${Object.keys(GENERATE_SHAPES).join(', ')}, got '${name}'`);
    const model = createModel({ ...shape(), device, precision, seed: 0 });
    for (const len of lengths) {
      const prompt = Array.from({ length: len }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
      // Stops are off and the first token's prefill is timed apart: every timed step is one decode step.
      const g = await model.generate(prompt, { maxTokens: warmup + tokens + 1, ...sampling, seed: 0 });
      const timed = g.timing.stepMs.slice(1 + warmup);
      const ms = timed.reduce((a, b) => a + b, 0) / timed.length;
      const result = {
        name: 'generate',
        model: name,
        gpu: model.device === 'cuda' ? gpu.name : null,
        device: model.device,
        date: new Date().toISOString().slice(0, 10),
        precision: model.computePrecision,
        batch: 1,
        prompt_tokens: len,
        new_tokens: timed.length,
        prefill_ms: g.timing.prefillMs,
        ms_per_token: ms,
        tokens_per_s: 1000 / ms,
        cuda_graphs: g.timing.cudaGraph,
        // null: greedy; else what the host's sampler was asked for.
        sampling: sampling.temperature > 0 ? { temperature: sampling.temperature, top_k: sampling.topK, top_p: sampling.topP } : null,
      };
      log(`${name} @ ${len}: ${ms.toFixed(3)} ms/token, prefill ${g.timing.prefillMs.toFixed(1)} ms`);
      results.push(result);
    }
  }
  return results;
}
