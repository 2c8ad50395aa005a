// A checkpoint's trainer.json (where training stands) and its reading, and the check that keeps
// non-finite weights out of checkpoints.
import { readFileSync } from 'node:fs';

import type { SamplerState } from '../data/source.js';
import { MambalabError } from '../errors.js';
import type { FloatArray } from '../models/safetensors.js';
import type { GuardState } from './guard.js';
import { checkTrainerOptions, DEFAULT_TRAINER_OPTIONS, type TrainerOptions } from './options.js';

/** trainer.json: where training stands (see README, "Checkpoints"). */
export interface TrainerState {
  step: number;
  /** Steps the optimizer applied (AdamW's bias correction counts them; skipped steps are not). */
  optimizerSteps?: number;
  tokens: number;
  elapsedS: number;
  options: TrainerOptions;
  sampler?: SamplerState;
  guard?: GuardState;
}

/** Throws at the first value that is not finite: a checkpoint never holds such weights. */
export function refuseNonFinite(name: string, values: FloatArray): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new MambalabError(`checkpoint: refusing to write non-finite weights ('${name}' holds ${values[i]} at index ${i}); the previous checkpoints are kept`);
    }
  }
}

/** trainer.json, checked; what a checkpoint written before optimizerSteps, guard or gradAccumulation existed lacks is filled in. */
export function readTrainerState(file: string): TrainerState {
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as TrainerState;
  } catch (e) {
    throw new MambalabError(`checkpoint: cannot read ${file} (${(e as Error).message})`);
  }
  const counts = ['step', 'tokens', 'elapsedS', ...(state.optimizerSteps !== undefined ? ['optimizerSteps' as const] : [])] as const;
  for (const key of counts) {
    const value = state[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new MambalabError(`checkpoint: ${file}: '${key}' must be a non-negative number, got ${JSON.stringify(value)}`);
  }
  if (typeof state.options !== 'object' || state.options === null) throw new MambalabError(`checkpoint: ${file} has no trainer 'options'`);
  // Checkpoints written before gradient accumulation existed took one pass per step.
  const options = { ...DEFAULT_TRAINER_OPTIONS, ...state.options };
  try {
    checkTrainerOptions(options);
  } catch (e) {
    throw new MambalabError(`checkpoint: ${file}: ${(e as Error).message}`);
  }
  return { ...state, options };
}
