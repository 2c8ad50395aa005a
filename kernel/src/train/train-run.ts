// trainRun: fit() recorded as a run on disk. Metrics are saved as training goes, the
// checkpoint at the end (also when stopped), and a failure is written into the run.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import { loadRun, removeRunFiles, Run, RUN_FILE } from './runs.js';
import type { StepMetrics } from './metrics.js';
import { TrainingInterrupted, type FitResult, type Trainer } from './trainer.js';

export interface TrainRunOptions {
  steps: number;
  /** The run's directory (default runs/<name>, or runs/<time> without a name). */
  dir?: string;
  /** Shown in plots and tables (default: the directory's name). */
  name?: string;
  evalEvery?: number;
  evalBatches?: number;
  /** Also checkpoint every this many steps; 0 (default) only when training ends or stops. */
  checkpointEvery?: number;
  /** Record the tokens routed to each expert (MoE models) every this many steps and at the last (default 10). */
  expertsEvery?: number;
  /** Seconds between rewrites of the metrics files while training (default 10). */
  saveEveryS?: number;
  signal?: AbortSignal;
  onStep?: (metrics: StepMetrics) => void;
}

function nonNegativeInt(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) throw new MambalabError(`trainRun: ${name} must be a non-negative integer, got ${value}`);
  return value;
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
  const { steps, name, evalEvery, evalBatches, signal, onStep } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new MambalabError(`trainRun: steps must be a positive integer, got ${steps}`);
  const checkpointEvery = nonNegativeInt('checkpointEvery', options.checkpointEvery);
  const expertsEvery = options.expertsEvery === undefined ? 10 : nonNegativeInt('expertsEvery', options.expertsEvery);
  const saveEveryMs = (options.saveEveryS ?? 10) * 1000;
  const dir = options.dir ?? join('runs', name ?? new Date().toISOString().replace(/[:.]/g, '-'));
  if (typeof dir !== 'string' || dir === '') throw new MambalabError(`trainRun: dir must be a directory path, got ${JSON.stringify(dir)}`);

  const run = runFor(trainer, data, dir, name);
  const start = { step: trainer.stepCount, tokens: run.tokens, wallS: run.train.wallS.at(-1) ?? 0 };
  run.status = 'running';
  run.save();
  let savedAt = Date.now();
  const checkpoint = () => {
    trainer.saveCheckpoint(run.checkpointDir);
    run.checkpointStep = trainer.stepCount;
  };
  const finish = (result: FitResult) => {
    // The loss before the first step, measured by fit(), is the validation curve's first point.
    run.recordValidation({ ...start, loss: result.initialEvalLoss });
    checkpoint();
    run.status = result.stopped ? 'stopped' : 'done';
    run.save();
  };
  let result: FitResult;
  try {
    result = await trainer.fit(data, {
      steps,
      evalEvery,
      evalBatches,
      signal,
      name: run.name,
      onStep: (m) => {
        const last = m.step === start.step + steps;
        run.record(m, { experts: last || (expertsEvery > 0 && m.step % expertsEvery === 0) });
        if (checkpointEvery > 0 && m.step % checkpointEvery === 0) checkpoint();
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
      throw new TrainingInterrupted(`${error.message}; the run and its checkpoint are saved in ${dir}`, error.result);
    }
    // The trainer stays at its last completed step; the run keeps the metrics up to it and
    // its last checkpoint, and says why it failed.
    run.status = 'failed';
    run.error = error instanceof Error ? error.message : String(error);
    run.save();
    throw error;
  }
  finish(result);
  return run;
}
