// Gradient accumulation chosen from the GPU's memory: a batch that a step cannot hold at once
// runs as micro-batches whose gradients the engine accumulates (the same update, see
// NativeModel.trainStep), the fewest that fit.
import { toNativeConfig } from '../models/config.js';
import type { Model } from '../models/model.js';
import { native } from '../native.js';

/** Share of the GPU's memory a step may plan to use (the rest: the CUDA context, fragmentation, the estimate's error). */
const MEMORY_HEADROOM = 0.9;

export interface Accumulation {
  microBatches: number;
  /** Why more than one, for the user (undefined when one pass fits, and on the CPU). */
  note?: string;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((k) => n % k === 0);
}

/** The fewest micro-batches (a divisor of batchSize) whose step the engine estimates to fit the model's GPU. */
export function fittingAccumulation(model: Model, batchSize: number, seqLen: number): Accumulation {
  if (model.device !== 'cuda') return { microBatches: 1 };
  const engine = native();
  const config = toNativeConfig(model.config);
  const params = model.parameterCount().total;
  const computeBytes = model.computePrecision === 'bf16' ? 2 : 4;
  const needs = (rows: number) => engine.estimateTrainingMemory(config, params, rows, seqLen, computeBytes).total;
  return chooseAccumulation(batchSize, seqLen, needs, engine.gpuMemory().deviceTotal);
}

/** The fewest micro-batches whose step, `needs(rows)` bytes, fits in MEMORY_HEADROOM of `deviceBytes`. */
export function chooseAccumulation(batchSize: number, seqLen: number, needs: (rows: number) => number, deviceBytes: number): Accumulation {
  const budget = MEMORY_HEADROOM * deviceBytes;
  const whole = needs(batchSize);
  if (whole <= budget) return { microBatches: 1 };
  const microBatches = divisors(batchSize).find((k) => needs(batchSize / k) <= budget) ?? batchSize;
  const fits = needs(batchSize / microBatches) <= budget ? '' : ' (and even that may not fit)';
  return {
    microBatches,
    note:
      `batch ${batchSize} × ${seqLen} needs about ${gib(whole)} in one pass, more than this GPU's ${gib(deviceBytes)} allows: ` +
      `accumulating gradients over ${microBatches} micro-batches of ${batchSize / microBatches} rows, the same update${fits}`,
  };
}
