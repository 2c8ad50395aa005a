// `mambalab bench train`: steady-state training throughput of a preset on random tokens
// (speed does not depend on token values), after warm-up steps.
import { cpus } from 'node:os';

import { DEVICES, MODEL_FAMILIES, paddedVocabSize, PRECISIONS } from '../models/config.js';
import { chooseDevice } from '../models/device.js';
import { trainingFlopsPerToken } from '../models/flops.js';
import { createModel, type Model } from '../models/model.js';
import { native, type GpuMemory, type Precision } from '../native.js';
import { Trainer } from '../train/trainer.js';
import { MambalabError } from '../errors.js';
import { choiceFlag, intFlag, parseFlags, presetFlags } from './args.js';
import { peakDenseFlops } from './gpus.js';

interface BenchShape {
  size: string;
  batchSize: number;
  seqLen: number;
}

/** On the GPU, the benchmark configs of the issues: the papers' largest sizes at a GPU-sized batch. */
export const GPU_BENCH_SHAPES: Record<(typeof MODEL_FAMILIES)[number], BenchShape> = {
  mamba: { size: 'v1', batchSize: 64, seqLen: 1024 },
  'mamba-mlp': { size: 'v1', batchSize: 64, seqLen: 1024 },
  'moe-mamba': { size: 'v1', batchSize: 64, seqLen: 1024 },
  'parallel-moe-mamba': { size: 'v1', batchSize: 64, seqLen: 1024 },
  blackmamba: { size: '340m-1.5b', batchSize: 8, seqLen: 2048 },
  // The Transformer baselines at Mamba v1's batch (their learned positions reach 1024).
  transformer: { size: 'v1', batchSize: 64, seqLen: 1024 },
  'transformer-moe': { size: 'v1', batchSize: 64, seqLen: 1024 },
  jamba: { size: '410m-1.6b', batchSize: 8, seqLen: 2048 },
};

/**
 * --scaling: batch × length at 65,536 tokens per step as sequences grow (issue 16's ladder), and
 * one 131,072-token sequence; on the CPU a small ladder at 256 tokens per step.
 */
export const GPU_SCALING_LADDER = '64x1024,16x4096,4x16384,1x65536,1x131072';
export const CPU_SCALING_LADDER = '8x32,2x128,1x256';

/** On the GPU the embedding is padded to a multiple of 64 rows (GPT-2's 50257 → 50304), as in the issues' configs. */
export const GPU_VOCAB_PAD_MULTIPLE = 64;

export const benchTrainUsage = `  --model NAME --size NAME   the preset (default mamba; size tiny on the CPU, on CUDA the benchmark
                             config: v1 at batch 64 × 1024, blackmamba 340m-1.5b and jamba 410m-1.6b
                             at 8 × 2048; vocab padded to 50304)
  --device DEV               cpu | cuda | auto (default cpu)
  --precision P              bf16 | fp32 on CUDA (default bf16); mfu is against that precision's peak
  --deterministic            no atomics (bit-identical runs)
  --batch-size B --seq-len L override the batch
  --warmup N --steps N       untimed then timed steps (default 3, 10)
  --scaling                  one result per batch × length of a ladder, the same model throughout
                             (on CUDA ${GPU_SCALING_LADDER.replaceAll(',', ', ')}; on the CPU
                             ${CPU_SCALING_LADDER.replaceAll(',', ', ')}); --ladder BxL,BxL,... gives another`;

/** The flags every model benchmark takes (bench train's, bench checkpoint's). */
export const BENCH_MODEL_FLAGS = {
  model: { type: 'string' },
  size: { type: 'string' },
  device: { type: 'string' },
  precision: { type: 'string' },
  deterministic: { type: 'boolean', default: false },
  'batch-size': { type: 'string' },
  'seq-len': { type: 'string' },
} as const;

type BenchModelFlags = { [K in keyof typeof BENCH_MODEL_FLAGS]?: (typeof BENCH_MODEL_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/**
 * The model a benchmark times and a batch of random tokens for it (speed does not depend on
 * token values): the preset the flags name, on the GPU the issues' benchmark config by default.
 */
export function benchModel(f: BenchModelFlags, defaultModel: string) {
  const device = choiceFlag('device', f.device, DEVICES, 'cpu');
  const precision = choiceFlag('precision', f.precision, PRECISIONS, 'bf16');
  // The defaults depend on where it runs, so "auto" is resolved before the model is built.
  const onGpu = chooseDevice({ device, dtype: 'float32' }, native().info().gpu).device === 'cuda';
  const family = f.model ?? defaultModel;
  const gpuShape = onGpu ? (GPU_BENCH_SHAPES as Record<string, BenchShape | undefined>)[family] : undefined;
  const size = f.size ?? gpuShape?.size ?? 'tiny';
  const p = presetFlags(family, size);
  const batchSize = intFlag('batch-size', f['batch-size'], gpuShape?.batchSize ?? p.training.batchSize, 1);
  const seqLen = intFlag('seq-len', f['seq-len'], gpuShape?.seqLen ?? p.training.seqLen, 1);
  const padding = onGpu ? { padVocabMultiple: GPU_VOCAB_PAD_MULTIPLE } : {};
  const model = createModel({ ...p.config, ...padding, device, precision, deterministic: f.deterministic ?? false, seed: 0 });
  return { family, size, preset: p, model, batch: randomBatch(model.config.vocabSize, batchSize, seqLen) };
}

/** A batch of pseudo-random token ids, the same for the same shape. */
function randomBatch(vocab: number, batchSize: number, seqLen: number) {
  let state = 12345;
  const tokens = new Int32Array(batchSize * (seqLen + 1)).map(() => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % vocab);
  return { tokens, batchSize, seqLen };
}

/** --ladder's value: batch × length pairs such as "64x1024,1x65536". */
export function parseLadder(value: string): { batchSize: number; seqLen: number }[] {
  return value.split(',').map((rung) => {
    const m = /^\s*([0-9]+)x([0-9]+)\s*$/.exec(rung);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new MambalabError(`--ladder: expected batch×length pairs such as 64x1024,1x65536, got '${rung}'`);
    return { batchSize: Number(m[1]), seqLen: Number(m[2]) };
  });
}

/** What every model benchmark's results say of the model that ran, after their name and GPU. */
export function benchedModel(model: Model, family: string, size: string) {
  return {
    device: model.device,
    date: new Date().toISOString().slice(0, 10),
    model: family,
    size,
    precision: model.computePrecision,
    deterministic: model.config.deterministic,
  };
}

export async function benchTrain(argv: string[], log: (line: string) => void) {
  const { values: f } = parseFlags('bench train', argv, {
    ...BENCH_MODEL_FLAGS,
    warmup: { type: 'string' },
    steps: { type: 'string' },
    scaling: { type: 'boolean', default: false },
    ladder: { type: 'string' },
  });
  if (f.ladder !== undefined && !f.scaling) throw new MambalabError('--ladder: only with --scaling');
  const given = f.ladder === undefined ? undefined : parseLadder(f.ladder);  // checked before a model is made
  const warmup = intFlag('warmup', f.warmup, 3);
  const steps = intFlag('steps', f.steps, 10, 1);
  const bench = benchModel(f, 'mamba');
  if (!f.scaling) return timeTraining(bench, bench.batch, warmup, steps, log);
  const ladder = given ?? parseLadder(bench.model.device === 'cuda' ? GPU_SCALING_LADDER : CPU_SCALING_LADDER);
  // One model throughout: each new shape reallocates its activations, so the peak is the rung's.
  const results = [];
  for (const { batchSize, seqLen } of ladder) {
    const batch = randomBatch(bench.model.config.vocabSize, batchSize, seqLen);
    results.push({ ...(await timeTraining(bench, batch, warmup, steps, log)), name: `train-scaling-${bench.family}-${bench.size}` });
  }
  return results;
}

/** Warm-up then timed steps of `batch` on a new trainer of the bench's model: one result. */
async function timeTraining(
  { family, size, preset: p, model }: ReturnType<typeof benchModel>,
  batch: ReturnType<typeof randomBatch>,
  warmup: number,
  steps: number,
  log: (line: string) => void,
) {
  const { batchSize, seqLen } = batch;
  const engine = native();
  const trainer = new Trainer(model, { ...p.training, batchSize, seqLen, totalSteps: warmup + steps });
  log(`bench train: ${family}/${size} on ${model.deviceNote}, ${model.computePrecision}, batch ${batchSize} × ${seqLen}, ${warmup} warm-up + ${steps} timed steps`);
  const onCuda = model.device === 'cuda';
  if (onCuda) engine.resetPeakGpuMemory();
  for (let i = 0; i < warmup; i++) await trainer.step(batch);
  // Each step resolves once its metrics are back from the device, so the wall time covers the GPU work.
  const started = performance.now();
  let graphSteps = 0;
  for (let i = 0; i < steps; i++) if ((await trainer.step(batch)).cudaGraph) graphSteps++;
  const seconds = (performance.now() - started) / 1000;

  const tokensPerS = (steps * batchSize * seqLen) / seconds;
  const flopsPerToken = trainingFlopsPerToken(model.config, seqLen);
  const achieved = tokensPerS * flopsPerToken;
  const counts = model.parameterCount();
  const where = onCuda ? cudaReport(engine.info().gpu.name, engine.gpuMemory(), model.config.precision, achieved) : cpuReport();
  const { gpu, ...memoryAndUtilisation } = where;
  return {
    name: `train-${family}-${size}`,
    gpu,
    ...benchedModel(model, family, size),
    params_non_embedding: counts.nonEmbedding,
    params_active: counts.active,
    vocab_padded: paddedVocabSize(model.config),
    batch_size: batchSize,
    seq_len: seqLen,
    warmup,
    steps,
    tokens_per_s: tokensPerS,
    step_ms: (seconds * 1000) / steps,
    // Timed steps that replayed a captured CUDA graph (0 on the CPU and for dropless MoE).
    cuda_graph_steps: graphSteps,
    flops_per_token: flopsPerToken,
    achieved_tflops: achieved / 1e12,
    ...memoryAndUtilisation,
  };
}

/** Where it ran, its memory and, against the GPU's peak, the model FLOPs utilisation. */
export interface DeviceReport {
  gpu: string;
  peak_mem_gib: number;
  peak_mem_source: string;
  device_used_gib: number | null;
  peak_flops: number | null;
  mfu: number | null;
  mfu_note?: string;
}

function cpuReport(): DeviceReport {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return {
    gpu: `none (CPU: ${cpu}, ${cpus().length} threads)`,
    // Resident memory high-water mark of this process (the CPU backend's "device" memory).
    peak_mem_gib: process.resourceUsage().maxRSS / 2 ** 20,
    peak_mem_source: 'process max RSS',
    device_used_gib: null,
    peak_flops: null,
    mfu: null,
    mfu_note: 'utilisation is reported on GPUs only',
  };
}

/** @internal (exported for tests) `memory` as the engine reports it after the timed steps. */
export function cudaReport(gpuName: string, memory: GpuMemory, precision: Precision, achievedFlops: number): DeviceReport {
  const peak = peakDenseFlops(gpuName, precision);
  return {
    gpu: gpuName,
    peak_mem_gib: memory.peakInUse / 2 ** 30,
    peak_mem_source: 'engine allocator',
    // Everything in use on the device: this process's CUDA context and cached blocks, and any other process.
    device_used_gib: (memory.deviceTotal - memory.deviceFree) / 2 ** 30,
    peak_flops: peak.flops,
    mfu: peak.flops === null ? null : achievedFlops / peak.flops,
    ...(peak.note ? { mfu_note: peak.note } : {}),
  };
}
