// A trainer's settings (the optimizer's, the schedule's, the batch's), their defaults and their
// checks: what run.json, config.json and a checkpoint's trainer.json record.
import { MambalabError } from '../errors.js';

export interface TrainerOptions {
  /** Peak learning rate. */
  lr: number;
  /** Floor the cosine decays to. */
  minLr: number;
  warmupSteps: number;
  /** Steps the cosine spans (fit() sets it from its `steps` when left 0). */
  totalSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global-norm clipping threshold; 0 turns clipping off. */
  gradClip: number;
  /** Rows per optimizer step (what the LR schedule, tokens and tokens/s count). */
  batchSize: number;
  seqLen: number;
  /** Seed of the training batch order. */
  seed: number;
  /**
   * Micro-batches per step (a divisor of batchSize): their gradients accumulate into one update,
   * the same as one pass over the batch in 1/K of the activation memory. Left out: 1 on the CPU,
   * on the GPU the fewest that fit its memory (trainer.accumulationNote says why when more).
   */
  gradAccumulation: number;
}

export const DEFAULT_TRAINER_OPTIONS: TrainerOptions = {
  lr: 1e-3,
  minLr: 1e-5,
  warmupSteps: 0,
  totalSteps: 0,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1.0,
  batchSize: 8,
  seqLen: 128,
  seed: 0,
  gradAccumulation: 1,
};

// A batch is one Int32Array of batchSize × (seqLen + 1) ids.
const MAX_BATCH_IDS = 2 ** 31 - 1;

/** Checks every setting, naming the first that is wrong as `${label}.<field>`. */
export function checkTrainerOptions(options: TrainerOptions, label = 'trainer'): void {
  for (const [key, value] of Object.entries(options)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new MambalabError(`${label}.${key}: expected a non-negative number, got ${JSON.stringify(value)}`);
    }
  }
  if (options.lr <= 0) throw new MambalabError(`${label}.lr: expected a positive number, got ${options.lr}`);
  if (options.beta1 >= 1 || options.beta2 >= 1) throw new MambalabError(`${label}.beta1/beta2: expected values below 1`);
  for (const key of ['batchSize', 'seqLen', 'gradAccumulation'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      throw new MambalabError(`${label}.${key}: expected a positive integer, got ${options[key]}`);
    }
  }
  if (options.batchSize % options.gradAccumulation !== 0) {
    throw new MambalabError(`${label}.gradAccumulation: ${options.gradAccumulation} micro-batches must divide the batch of ${options.batchSize} rows`);
  }
  if (options.batchSize * (options.seqLen + 1) > MAX_BATCH_IDS) {
    throw new MambalabError(`${label}.batchSize × (seqLen + 1) = ${options.batchSize * (options.seqLen + 1)} ids, more than one batch holds (${MAX_BATCH_IDS})`);
  }
}
