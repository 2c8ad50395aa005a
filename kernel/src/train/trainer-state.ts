// A checkpoint's trainer.json (where training stands) and its reading, and the check that keeps
// non-finite weights out of checkpoints.
import { readFileSync } from 'node:fs';

import type { SamplerState } from '../data/source.js';
import { MambalabError } from '../errors.js';
import { shaped, type Shape } from '../json-shape.js';
import { firstNonFinite, type FloatArray } from '../models/safetensors.js';
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
  const i = firstNonFinite(values);
  if (i >= 0) {
    throw new MambalabError(`checkpoint: refusing to write non-finite weights ('${name}' holds ${values[i]} at index ${i}); the previous checkpoints are kept`);
  }
}

const STATE_SHAPE: Shape = {
  step: 'count',
  'optimizerSteps?': 'count',
  tokens: 'count',
  elapsedS: 'number',
  options: { '*': 'any' },
  'sampler?': { seed: 'number', batches: 'count', 'rngState?': 'number', 'epoch?': 'count', 'position?': 'count', 'seqLen?': 'count' },
  'guard?': { nonfiniteSteps: 'count', consecutive: 'count', lossEma: 'number', averagedSteps: 'count' },
};

/**
 * trainer.json, every field checked, its options as the trainer checks them and its sampler
 * consistent with them; what a checkpoint written before optimizerSteps, guard or
 * gradAccumulation existed lacks is filled in.
 */
export function readTrainerState(file: string): TrainerState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`checkpoint: cannot read ${file} (${(e as Error).message})`);
  }
  let state: TrainerState;
  try {
    state = shaped<TrainerState>(file, parsed, STATE_SHAPE);
  } catch (e) {
    throw new MambalabError(`checkpoint: ${(e as Error).message}`);
  }
  // Checkpoints written before gradient accumulation existed took one pass per step.
  const options = { ...DEFAULT_TRAINER_OPTIONS, ...state.options };
  checkTrainerOptions(options, `checkpoint: ${file}: options`);
  // The sampler resumes with these options, from a generator's state or an epoch and position.
  const { sampler } = state;
  for (const key of ['seed', 'seqLen'] as const) {
    if (sampler?.[key] !== undefined && sampler[key] !== options[key]) {
      throw new MambalabError(`checkpoint: ${file}: sampler.${key} is ${sampler[key]}, but options.${key} is ${options[key]}: the file is damaged`);
    }
  }
  if (sampler && sampler.rngState === undefined && (sampler.epoch === undefined || sampler.position === undefined)) {
    throw new MambalabError(`checkpoint: ${file}: sampler has neither rngState nor an epoch and position: the file is damaged`);
  }
  return { ...state, options };
}
