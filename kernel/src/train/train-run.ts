// trainRun: fit() recorded as a run on disk. Metrics are saved as training goes and before every
// checkpoint, checkpoints are written as the options say and when training ends or stops, and a
// failure is written into the run. resumeRun: a run continued from its newest checkpoint.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import { createModel } from '../models/model.js';
import { DEFAULT_KEEP, listCheckpoints, removeCheckpointsAfter } from './checkpoints.js';
import { differences } from './differences.js';
import { DEFAULT_MAX_BAD_STEPS } from './guard.js';
import type { StepMetrics } from './metrics.js';
import { loadRun, removeRunFiles, Run, RUN_FILE, type RunPlan } from './runs.js';
import { Trainer, TrainingInterrupted, type FitResult, type LoadedCheckpoint } from './trainer.js';

export interface TrainRunOptions {
  steps: number;
  /** The run's directory (default runs/<name>, or runs/<time> without a name). */
  dir?: string;
  /** Shown in plots and tables (default: the directory's name). */
  name?: string;
  evalEvery?: number;
  evalBatches?: number;
  /** At least this many validation tokens per evaluation (overrides evalBatches). */
  evalTokens?: number;
  /** Checkpoint every this many steps (default 0: not by steps). */
  checkpointEvery?: number;
  /** Checkpoint when this many minutes passed since the last one (default 30; 0: not by time). */
  checkpointMinutes?: number;
  /** Checkpoints kept, the newest (default 2). Training also checkpoints when it ends or stops. */
  keepCheckpoints?: number;
  /** Consecutive non-finite steps after which training stops with TrainingDiverged (default 8). */
  maxBadSteps?: number;
  /** Record the tokens routed to each expert (MoE models) every this many steps and at the last (default 10). */
  expertsEvery?: number;
  /** Seconds between rewrites of the metrics files while training (default 10). */
  saveEveryS?: number;
  signal?: AbortSignal;
  onStep?: (metrics: StepMetrics) => void;
}

export const DEFAULT_CHECKPOINT_MINUTES = 30;

function nonNegativeInt(name: string, value: number | undefined, fallback = 0): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new MambalabError(`trainRun: ${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** The plan of a run that starts at `from`, from trainRun's options, checked. */
function planOf(options: TrainRunOptions, from: number): RunPlan {
  const { steps } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new MambalabError(`trainRun: steps must be a positive integer, got ${steps}`);
  const checkpointMinutes = options.checkpointMinutes ?? DEFAULT_CHECKPOINT_MINUTES;
  if (!(checkpointMinutes >= 0)) throw new MambalabError(`trainRun: checkpointMinutes must be a non-negative number, got ${checkpointMinutes}`);
  const keepCheckpoints = nonNegativeInt('keepCheckpoints', options.keepCheckpoints, DEFAULT_KEEP);
  const maxBadSteps = nonNegativeInt('maxBadSteps', options.maxBadSteps, DEFAULT_MAX_BAD_STEPS);
  for (const [name, value] of [['keepCheckpoints', keepCheckpoints], ['maxBadSteps', maxBadSteps]] as const) {
    if (value < 1) throw new MambalabError(`trainRun: ${name} must be a positive integer, got ${value}`);
  }
  return {
    untilStep: from + steps,
    evalEvery: nonNegativeInt('evalEvery', options.evalEvery),
    ...(options.evalBatches !== undefined ? { evalBatches: options.evalBatches } : {}),
    ...(options.evalTokens !== undefined ? { evalTokens: options.evalTokens } : {}),
    checkpointEvery: nonNegativeInt('checkpointEvery', options.checkpointEvery),
    checkpointMinutes,
    keepCheckpoints,
    expertsEvery: nonNegativeInt('expertsEvery', options.expertsEvery, 10),
    maxBadSteps,
  };
}

/**
 * The run in `dir` for this trainer. A fresh trainer (step 0) starts the run over; a trainer
 * that continues the run (or was resumed from its checkpoint) keeps its history up to the
 * trainer's step.
 */
function runFor(trainer: Trainer, data: TokenSource, dir: string, name: string | undefined): Run {
  const at = trainer.stepCount;
  if (existsSync(join(dir, RUN_FILE))) {
    if (at === 0) {
      removeRunFiles(dir);
    } else {
      const run = loadRun(dir);
      if (at > run.steps) {
        throw new MambalabError(`trainRun: ${dir} holds a run that ends at step ${run.steps}, but this trainer is at step ${at}; use another dir`);
      }
      if (JSON.stringify(run.config.model) !== JSON.stringify(trainer.model.config)) {
        throw new MambalabError(`trainRun: ${dir} holds a run of another model config; use another dir or a fresh trainer`);
      }
      run.truncate(at);
      removeCheckpointsAfter(dir, at);
      if (name !== undefined) run.name = name;
      run.error = undefined;
      return run;
    }
  }
  return Run.create(dir, { name, model: trainer.model, trainer: trainer.options, data: data.description });
}

/** Trains for `steps` steps and records the run in `options.dir`; resolves to the run. */
export async function trainRun(trainer: Trainer, data: TokenSource, options: TrainRunOptions): Promise<Run> {
  if (options === null || typeof options !== 'object') throw new MambalabError('trainRun: expected options such as { steps: 40, dir: "runs/x" }');
  const plan = planOf(options, trainer.stepCount);
  const dir = options.dir ?? join('runs', options.name ?? new Date().toISOString().replace(/[:.]/g, '-'));
  if (typeof dir !== 'string' || dir === '') throw new MambalabError(`trainRun: dir must be a directory path, got ${JSON.stringify(dir)}`);
  const run = runFor(trainer, data, dir, options.name);
  // The loss before the first step is the validation curve's first point, saved before any step.
  const loss = await trainer.evaluate(data, { batches: plan.evalBatches, tokens: plan.evalTokens });
  run.recordValidation({ step: trainer.stepCount, tokens: run.tokens, wallS: run.train.wallS.at(-1) ?? 0, loss });
  return recordRun(trainer, data, run, plan, { ...options, dir });
}

/** Fits the trainer up to plan.untilStep, recording into `run` (already holding the history up to the trainer's step). */
async function recordRun(trainer: Trainer, data: TokenSource, run: Run, plan: RunPlan, options: Pick<TrainRunOptions, 'dir' | 'saveEveryS' | 'signal' | 'onStep'>): Promise<Run> {
  const { signal, onStep } = options;
  const saveEveryMs = (options.saveEveryS ?? 10) * 1000;
  run.plan = plan;
  run.status = 'running';
  run.save();
  let savedAt = Date.now();
  const finish = (result: FitResult) => {
    trainer.writeCheckpoint(run.dir, { keep: plan.keepCheckpoints });
    run.status = result.stopped ? 'stopped' : 'done';
    run.save();
  };
  let result: FitResult;
  try {
    result = await trainer.fit(data, {
      steps: plan.untilStep - trainer.stepCount,
      evalEvery: plan.evalEvery,
      evalBatches: plan.evalBatches,
      evalTokens: plan.evalTokens,
      initialEval: false,
      signal,
      name: run.name,
      checkpointDir: run.dir,
      checkpointEvery: plan.checkpointEvery,
      checkpointMinutes: plan.checkpointMinutes,
      keepCheckpoints: plan.keepCheckpoints,
      maxBadSteps: plan.maxBadSteps,
      // The metrics up to a checkpoint are on disk before it: a resumed run never lacks a step.
      beforeCheckpoint: () => {
        run.save();
        savedAt = Date.now();
      },
      onStep: (m) => {
        const last = m.step === plan.untilStep;
        run.record(m, { experts: last || (plan.expertsEvery > 0 && m.step % plan.expertsEvery === 0) });
        if (Date.now() - savedAt >= saveEveryMs) {
          run.save();
          savedAt = Date.now();
        }
        onStep?.(m);
      },
    });
  } catch (error) {
    if (error instanceof TrainingInterrupted) {
      finish(error.result);
      throw new TrainingInterrupted(`${error.message}; the run and its checkpoint are saved in ${options.dir ?? run.dir}`, error.result);
    }
    // The trainer stays at its last completed step; the run keeps the metrics up to it and
    // its checkpoints (none written after the failure), and says why it failed.
    run.status = 'failed';
    run.error = error instanceof Error ? error.message : String(error);
    run.save();
    throw error;
  }
  finish(result);
  return run;
}

export interface ResumeRunOptions extends Pick<TrainRunOptions, 'saveEveryS' | 'signal' | 'onStep' | 'name'> {
  /** Micro-batches per step on this machine (default: as the run was trained). */
  gradAccumulation?: number;
  /** Told which checkpoint the run goes on from (undefined: none yet, it starts over), and which newer ones did not load. */
  onResume?: (from: LoadedCheckpoint | undefined) => void;
}

/**
 * Continues the run in `dir` (written by trainRun) from its newest checkpoint that loads: the
 * weights, AdamW moments, schedule position, batch order and step counts, appending to the same
 * metrics, up to the step it was planned to reach. `data` must be what it trained on.
 */
export async function resumeRun(dir: string, data: TokenSource, options: ResumeRunOptions = {}): Promise<Run> {
  const run = loadRun(dir);
  const plan = run.plan;
  if (!plan) throw new MambalabError(`resumeRun: ${run.dir} was written before runs could be resumed (its ${RUN_FILE} has no plan); continue it with trainRun`);
  const { gradAccumulation, onResume, name, ...fitting } = options;
  const changed = run.config.data === undefined ? [] : differences({ data: run.config.data }, { data: data.description });
  if (changed.length > 0) throw new MambalabError(`resumeRun: ${run.dir} was trained on other data: ${changed[0]}`);
  const model = createModel(run.config.model);
  const trainer = new Trainer(model, { ...run.config.trainer, ...(gradAccumulation !== undefined ? { gradAccumulation } : {}) });
  const from = listCheckpoints(run.dir).length > 0 ? trainer.loadCheckpoint(run.dir) : undefined;
  onResume?.(from);
  if (!from) {
    const { untilStep, ...planned } = plan;
    return trainRun(trainer, data, { ...planned, ...fitting, steps: untilStep, dir: run.dir, name: name ?? run.name });
  }
  if (trainer.stepCount > run.steps) {
    throw new MambalabError(`resumeRun: the newest checkpoint of ${run.dir} is at step ${trainer.stepCount}, but its metrics end at step ${run.steps} (were they replaced?)`);
  }
  const resumed = runFor(trainer, data, run.dir, name);
  if (trainer.stepCount >= plan.untilStep) {
    resumed.status = 'done';
    resumed.save();
    return resumed;
  }
  return recordRun(trainer, data, resumed, plan, { ...fitting, dir });
}
