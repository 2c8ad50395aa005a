// experiment: trains several models ("arms") one after another on the same batches in the
// same order, records each as a run, and compares every arm with the baseline the way the
// MoE-Mamba paper does.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { displayDocument, type ComparisonDoc } from '@mambalab/contract';

import type { TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import { resolveConfig, type ModelConfig } from '../models/config.js';
import { createModel } from '../models/model.js';
import { compareRuns, type CompareOptions } from './compare.js';
import type { StepMetrics } from './metrics.js';
import { loadRun, type Run } from './runs.js';
import { trainRun } from './train-run.js';
import { Trainer, TrainingInterrupted, type TrainerOptions } from './trainer.js';

export interface Arm {
  /** Names the arm's run and its directory (letters, digits, '.', '_' and '-'). */
  name: string;
  model: Partial<ModelConfig>;
  /** This arm's trainer settings over the shared ones (not the batch order: see ExperimentOptions.trainer). */
  trainer?: Partial<TrainerOptions>;
}

export interface ExperimentOptions extends CompareOptions {
  steps: number;
  /** Each arm's run goes to <dir>/<arm name>; the comparison to <dir>/experiment.mambalab.json. */
  dir: string;
  /** Trainer settings of every arm; batchSize, seqLen and seed fix the shared batch order. */
  trainer?: Partial<TrainerOptions>;
  /** The arm the others are compared with (default: the first). */
  baseline?: string;
  evalEvery?: number;
  evalBatches?: number;
  /** Record each MoE layer's tokens per expert every this many steps (trainRun's default: 10). */
  expertsEvery?: number;
  signal?: AbortSignal;
  /** Called after every training step of every arm (a sweep's live table follows them so). */
  onStep?: (arm: string, metrics: StepMetrics) => void;
}

export interface ExperimentResult {
  dir: string;
  runs: Run[];
  /** Every other arm against the baseline. */
  comparisons: ComparisonDoc[];
  /** True when options.signal stopped training before every arm finished (an interrupt rejects instead). */
  stopped: boolean;
}

export const EXPERIMENT_DISPLAY_FILE = 'experiment.mambalab.json';
const BATCH_ORDER_KEYS = ['batchSize', 'seqLen', 'seed'] as const;

function checkedArms(arms: Arm[]): Arm[] {
  if (!Array.isArray(arms) || arms.length === 0) throw new MambalabError('experiment: expected a non-empty array of arms such as [{ name: "mamba", model: {...} }]');
  const names = new Set<string>();
  for (const [i, arm] of arms.entries()) {
    if (!arm || typeof arm !== 'object') throw new MambalabError(`experiment: arm ${i} must be an object { name, model, trainer? }`);
    if (typeof arm.name !== 'string' || !/^[\w.-]+$/.test(arm.name)) {
      throw new MambalabError(`experiment: arm ${i} needs a name of letters, digits, '.', '_' or '-' (it names a directory), got ${JSON.stringify(arm.name)}`);
    }
    if (names.has(arm.name)) throw new MambalabError(`experiment: two arms are named '${arm.name}'`);
    names.add(arm.name);
    for (const key of BATCH_ORDER_KEYS) {
      if (arm.trainer?.[key] !== undefined) {
        throw new MambalabError(`experiment: arm '${arm.name}' sets trainer.${key}, but all arms share the batch order; set it in the options' trainer`);
      }
    }
    try {
      resolveConfig(arm.model);
    } catch (e) {
      throw new MambalabError(`experiment: arm '${arm.name}': ${(e as Error).message}`);
    }
  }
  return arms;
}

/** Trains every arm for `steps` steps on the same batches; resolves when all are done or one was stopped. */
export async function experiment(arms: Arm[], data: TokenSource, options: ExperimentOptions): Promise<ExperimentResult> {
  checkedArms(arms);
  if (!options || typeof options.dir !== 'string' || options.dir === '') throw new MambalabError('experiment: options.dir (where the runs go) is required');
  const { steps, dir, evalEvery, evalBatches, expertsEvery, signal, onStep } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new MambalabError(`experiment: steps must be a positive integer, got ${steps}`);
  const baselineName = options.baseline ?? arms[0]!.name;
  if (!arms.some((a) => a.name === baselineName)) {
    throw new MambalabError(`experiment: baseline '${baselineName}' is not an arm (arms: ${arms.map((a) => a.name).join(', ')})`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'experiment.json'), JSON.stringify({ arms, steps, trainer: options.trainer ?? {}, baseline: baselineName }, null, 2) + '\n');

  const runs: Run[] = [];
  let stopped = false;
  let interrupted: TrainingInterrupted | undefined;
  for (const arm of arms) {
    if (signal?.aborted) {
      stopped = true;
      break;
    }
    const model = createModel(arm.model);
    const trainer = new Trainer(model, { ...options.trainer, ...arm.trainer, totalSteps: steps });
    let run: Run;
    try {
      run = await trainRun(trainer, data, {
        steps,
        dir: join(dir, arm.name),
        name: arm.name,
        evalEvery,
        evalBatches,
        expertsEvery,
        signal,
        ...(onStep ? { onStep: (m: StepMetrics) => onStep(arm.name, m) } : {}),
      });
    } catch (error) {
      // An interrupt ends the experiment: what was trained is compared and saved, then it goes on up.
      if (!(error instanceof TrainingInterrupted)) throw error;
      runs.push(loadRun(join(dir, arm.name)));
      interrupted = error;
      break;
    } finally {
      // The run is on disk (its checkpoints load the model again): the next arm gets the memory.
      model.dispose();
    }
    runs.push(run);
    if (run.status === 'stopped') {
      stopped = true;
      break;
    }
  }
  const baseline = runs.find((r) => r.name === baselineName);
  const comparisons = baseline && baseline.steps > 0
    ? runs.filter((r) => r !== baseline && r.steps > 0).map((r) => compareRuns(baseline, r, options))
    : [];
  const doc = displayDocument({ runs: runs.map((r) => r.toDoc()), comparisons, title: `experiment ${arms.map((a) => a.name).join(' vs ')}` });
  writeFileSync(join(dir, EXPERIMENT_DISPLAY_FILE), JSON.stringify(doc, null, 1) + '\n');
  if (interrupted) throw interrupted;
  return { dir: resolve(dir), runs, comparisons, stopped };
}
