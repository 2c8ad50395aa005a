// Loads the C++ engine (built by cmake-js into native/build) and types its surface.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MambalabError } from './errors.js';

export type DType = 'float32' | 'float64';
export type Slot = 'value' | 'grad' | 'adam_m' | 'adam_v';
/** Where the engine runs a model ("auto" is resolved before it gets here). */
export type EngineDevice = 'cpu' | 'cuda';
/** Compute precision on the GPU: bf16 (fp32 master weights, optimizer and residual) or full fp32. */
export type Precision = 'bf16' | 'fp32';

/** How the engine runs a model. */
export interface NativeModelOptions {
  /** Default 'cpu'. On 'cuda' the dtype must be 'float32' (the dtype of read/write). */
  device?: EngineDevice;
  /** CUDA only (default 'bf16'); the CPU computes in the model's dtype. */
  precision?: Precision;
  /** No atomics anywhere: two runs are bit-identical. */
  deterministic?: boolean;
}

/** Device memory a training step needs, in bytes: weights with gradients and AdamW state, kept activations, scratch. */
export interface MemoryEstimate {
  weights: number;
  activations: number;
  transient: number;
  total: number;
}

/** The engine's GPU allocator, in bytes (all 0 without a GPU). */
export interface GpuMemory {
  inUse: number;
  /** High-water mark of inUse since the start or resetPeakGpuMemory(). */
  peakInUse: number;
  /** Held by the caching allocator, free for reuse. */
  cached: number;
  cudaMallocs: number;
  deviceTotal: number;
  deviceFree: number;
}

/**
 * The model config as the engine reads it: models/config.ts's ModelConfig, field names and
 * all, with the layer pattern parsed into `layers` (one array of kind letters per layer).
 */
export type NativeModelConfig = Readonly<Record<string, unknown>> & { readonly layers: readonly (readonly string[])[] };

/** What a forward (and step) reports: losses and, per MoE layer, tokens per expert. */
export interface NativeMetrics {
  loss: number;
  auxLoss: number;
  /** 0 unless a training step (norm before clipping). */
  gradNorm: number;
  experts: { counts: number[]; dropped: number }[];
  /** The step replayed a captured CUDA graph (false on the CPU and for eager GPU steps). */
  cudaGraph: boolean;
  /** A training step whose loss or gradient norm was not finite: no weight or moment changed. */
  skipped: boolean;
}

export interface NativeParameter {
  name: string;
  shape: number[];
  fileShape: number[];
  weightDecay: boolean;
}

export interface NativeOptimizer {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
}

/** Sampling as the engine takes it (generate/sampling.h); models/generation.ts checks it first. */
export interface NativeSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  seed: number;
}

/** Tokens sampled in one generateNext call. */
export interface NativeGenerateChunk {
  /** (steps, batch), step-major. */
  tokens: Int32Array;
  /** Each step's wall time in ms. */
  stepMs: number[];
  /** Every sequence has sampled a stop id. */
  allStopped: boolean;
  /** The last decode step replayed a captured CUDA graph. */
  cudaGraph: boolean;
}

/** Bytes of one kind of parameter buffer, and the part the experts' tensors take. */
export interface NativeHeldBytes {
  bytes: number;
  experts: number;
}

/** Bytes of the parameters' buffers a model holds now, as allocated (0 before its first use). */
export interface NativeParameterMemory {
  weights: NativeHeldBytes;
  /** The compute copy of the weights (bf16 on the GPU); 0 where the layers read the weights themselves. */
  compute: NativeHeldBytes;
  gradients: NativeHeldBytes;
  moments: NativeHeldBytes;
  /** Expert parallel with micro-batches: other ranks' gradients for this rank's experts, kept during a step only. */
  expertSources: number;
}

export interface NativeModel {
  readonly dtype: DType;
  stepsDone: number;
  /** Bytes of AdamW moments the model holds now: 0 before its first step; a sharded rank's share alone. */
  readonly optimizerStateBytes: number;
  /** The parameters' buffers, as allocated now; an expert-parallel rank holds its own experts alone. */
  readonly parameterMemory: NativeParameterMemory;
  parameters(): NativeParameter[];
  /** A whole tensor; with the optimizer sharded a moment read is collective: every rank reads the same tensors in the same order. */
  read(name: string, slot: Slot, out: Float32Array | Float64Array): void;
  write(name: string, slot: Slot, values: Float32Array | Float64Array): void;
  evaluate(tokens: Int32Array, batch: number, lenPlusOne: number): Promise<NativeMetrics>;
  lossAndGradients(tokens: Int32Array, batch: number, lenPlusOne: number): Promise<NativeMetrics>;
  /** One optimizer step; the batch's rows split into `microBatches` equal micro-batches whose gradients accumulate (default 1). */
  trainStep(tokens: Int32Array, batch: number, lenPlusOne: number, lr: number, optimizer: NativeOptimizer, microBatches?: number): Promise<NativeMetrics>;
  /** The parallel forward's logits at every position: (batch, len, vocabSize), in the model's dtype. */
  parallelLogits(tokens: Int32Array, batch: number, len: number): Promise<Float32Array | Float64Array>;
  /** Prefills prompts of `lengths` tokens (concatenated in `tokens`) for up to maxNewTokens more; resolves to each prompt's last logits (batch, vocabSize). */
  generateStart(tokens: Int32Array, lengths: Int32Array, maxNewTokens: number, sampling: NativeSampling, stopIds: Int32Array): Promise<Float32Array | Float64Array>;
  /** Samples up to maxSteps tokens per sequence, returning early after maxMs or once every sequence has stopped. */
  generateNext(maxSteps: number, maxMs: number): Promise<NativeGenerateChunk>;
  /** Teacher forcing: one given token per sequence; resolves to the logits after it (batch, vocabSize). */
  generateFeed(tokens: Int32Array): Promise<Float32Array | Float64Array>;
  /** Data parallel: resolves once every rank has joined at the rendezvous; later trainSteps sum with them. */
  joinRanks(ranks: NativeRanks): Promise<void>;
  /** Rank 0's values, on every rank of a joined model (the values themselves before joining); every rank calls it alike. */
  fromRankZero(values: Float64Array): Promise<Float64Array>;
  /** Frees the model's memory now; later calls throw. Idempotent; refused while a call runs. */
  dispose(): void;
}

/** One rank of a data-parallel run: where the ranks meet (a file every rank names alike) and for which session. */
export interface NativeRanks {
  rendezvous: string;
  session: number;
  rank: number;
  world: number;
  /** Seconds a rank waits for the others (to join, or at a step) before it fails, naming the wait. */
  timeoutS: number;
  /** How the ranks sum (default 'shared-memory': through the host; 'nccl': on this process's GPU). */
  collective?: 'shared-memory' | 'nccl';
  /** Each rank keeps and updates only its share of the optimizer state (ZeRO-1); default false. */
  shardOptimizer?: boolean;
  /** Each rank runs and updates only its block of each MoE layer's experts; default false. */
  expertParallel?: boolean;
}

export interface NativeAddon {
  Model: new (config: NativeModelConfig, dtype: DType, options?: NativeModelOptions) => NativeModel;
  gpuMemory(): GpuMemory;
  /** The engine's estimate of one training step's device memory, in bytes (computeBytes: 2 for bf16, 4 for fp32). */
  estimateTrainingMemory(config: NativeModelConfig, paramCount: number, batch: number, seqLen: number, computeBytes: number): MemoryEstimate;
  resetPeakGpuMemory(): void;
  info(): { threads: number; backends: string[]; gpu: NativeGpuInfo };
  /** Loads NCCL (once) and says from where; throws naming every place searched when it is not found. */
  loadNccl(): { library: string; version: string };
}

/** CUDA devices the engine can use; `status` says why there are none ("no GPU: ..."). */
export interface NativeGpuInfo {
  builtWithCuda: boolean;
  deviceCount: number;
  name: string;
  computeCapability: number;
  status: string;
}

const here = dirname(fileURLToPath(import.meta.url));
// From kernel/src or kernel/dist alike, the build lives in native/build at the repo root.
const addonPath = join(here, '..', '..', 'native', 'build', 'Release', 'mambalab.node');

let loaded: NativeAddon | undefined;

/** The engine, loaded once per process. */
export function native(): NativeAddon {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new MambalabError(`the native engine is not built (no ${addonPath}); run \`npm install\` at the repo root`);
  }
  loaded = createRequire(import.meta.url)(addonPath) as NativeAddon;
  return loaded;
}

/** How the engine's message starts when a model or batch does not fit on the GPU. */
const OUT_OF_GPU_MEMORY = 'out of GPU memory';
/** How the engine's calls on a disposed model fail. */
export const MODEL_DISPOSED = 'model: disposed';
/** How a data-parallel rank's waits and rendezvous fail (a missing or hung rank is the user's to see). */
const DATA_PARALLEL = 'data parallel:';

// Running out of GPU memory is the user's to fix (a smaller batch, sequence or model; the
// engine's message names them), so it comes back as a MambalabError, message intact.
function asUserError(error: unknown): unknown {
  if (error instanceof Error && !(error instanceof MambalabError) && [OUT_OF_GPU_MEMORY, MODEL_DISPOSED, DATA_PARALLEL].some((m) => error.message.startsWith(m))) {
    return new MambalabError(error.message, { cause: error });
  }
  return error;
}

/** A model on the engine whose out-of-GPU-memory errors are MambalabErrors (see asUserError). */
export function newNativeModel(config: NativeModelConfig, dtype: DType, options: NativeModelOptions): NativeModel {
  let model: NativeModel;
  try {
    model = new (native().Model)(config, dtype, options);
  } catch (error) {
    throw asUserError(error);
  }
  return withUserErrors(model);
}

/** @internal Makes the model's work reject (and its collective reads throw) with asUserError's errors (exported for tests). */
export function withUserErrors(model: NativeModel): NativeModel {
  const read = model.read.bind(model);
  Object.defineProperty(model, 'read', {
    value: (...args: Parameters<NativeModel['read']>) => {
      try {
        read(...args);
      } catch (error) {
        throw asUserError(error);
      }
    },
  });
  for (const work of ['evaluate', 'lossAndGradients', 'trainStep', 'parallelLogits', 'generateStart', 'generateNext', 'generateFeed', 'joinRanks', 'fromRankZero'] as const) {
    const run = model[work].bind(model) as (...args: unknown[]) => Promise<unknown>;
    // Called at once (the engine's busy check sees it), whether the engine throws or rejects.
    const value = async (...args: unknown[]) => {
      try {
        return await run(...args);
      } catch (error) {
        throw asUserError(error);
      }
    };
    Object.defineProperty(model, work, { value });
  }
  return model;
}
