// A run on disk: what was trained (run.json), its per-step metrics and validation losses
// (Arrow IPC files, readable by pyarrow and pandas; run-files.ts writes and checks them), its
// checkpoints (checkpoints.ts), and the display document the lab extension opens (run.mambalab.json).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { inspect } from 'node:util';

import { displayDocument, TRAIN_COLUMNS, VALIDATION_COLUMNS, type ExpertCounts, type ModelSummary, type RunDoc, type RunStatus } from '@mambalab/contract';

import { MambalabError } from '../errors.js';
import { writeFileDurably } from '../files.js';
import { trainingFlopsPerToken } from '../models/flops.js';
import type { Model } from '../models/model.js';
import { CHECKPOINTS_DIR, NEWEST_CHECKPOINT, newestCheckpoint } from './checkpoints.js';
import { MetricsLog, type LoggedMetrics, type StepMetrics, type TrainColumns, type ValidationColumns, type ValidationPoint } from './metrics.js';
import { LATER_TRAIN_COLUMNS, readExperts, readLog, readRunRecord, writeExperts, writeLog, type RunConfig, type RunPlan, type RunRecord } from './run-files.js';
import type { TrainerOptions } from './trainer.js';

export type { RunConfig, RunPlan } from './run-files.js';

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.arrow';
export const VALIDATION_FILE = 'validation.arrow';
export const EXPERTS_FILE = 'experts.arrow';
export const RUN_DISPLAY_FILE = 'run.mambalab.json';

/** What the papers count: parameters without the (tied) embedding, and those one token uses. */
export function modelSummary(model: Model): ModelSummary {
  const { nonEmbedding, active } = model.parameterCount();
  const c = model.config;
  return { family: c.model, pattern: c.pattern, dModel: c.dModel, paramsTotal: nonEmbedding, paramsActive: active };
}

export class Run {
  /** Absolute path of the run's directory. */
  readonly dir: string;
  readonly id: string;
  name: string;
  status: RunStatus;
  readonly config: RunConfig;
  readonly model: ModelSummary;
  readonly created: string;
  plan?: RunPlan;
  error?: string;
  private readonly log: MetricsLog;

  private constructor(dir: string, record: RunRecord, logged?: LoggedMetrics) {
    this.dir = resolve(dir);
    this.id = record.id;
    this.name = record.name;
    this.status = record.status;
    this.config = record.config;
    this.model = record.model;
    this.created = record.created;
    this.plan = record.plan;
    this.error = record.error;
    this.log = new MetricsLog(`run ${record.id}`, record.config.model, logged);
  }

  /** A new, empty run of this model (nothing is written until save()). */
  static create(dir: string, init: { name?: string; model: Model; trainer: TrainerOptions; data?: string }): Run {
    const id = basename(resolve(dir));
    const now = new Date().toISOString();
    const record: RunRecord = {
      version: 1,
      id,
      name: init.name ?? id,
      status: 'running',
      created: now,
      updated: now,
      config: { model: { ...init.model.config }, trainer: { ...init.trainer }, ...(init.data ? { data: init.data } : {}) },
      model: modelSummary(init.model),
    };
    return new Run(dir, record);
  }

  /** @internal */
  static fromDisk(dir: string, record: RunRecord): Run {
    return new Run(dir, record, {
      train: readLog(join(dir, METRICS_FILE), TRAIN_COLUMNS, 1, LATER_TRAIN_COLUMNS),
      validation: readLog(join(dir, VALIDATION_FILE), VALIDATION_COLUMNS, 0),
      experts: readExperts(join(dir, EXPERTS_FILE), record.config.model),
    });
  }

  /** One entry per training step, column-wise. */
  get train(): TrainColumns {
    return this.log.train;
  }

  /** Validation loss at the steps where it was measured (step 0: before training). */
  get validation(): ValidationColumns {
    return this.log.validation;
  }

  /** Tokens routed to each expert of each MoE layer, at the steps recorded. */
  get experts(): ExpertCounts | undefined {
    return this.log.experts;
  }

  /** The last training step recorded (0 before any). */
  get steps(): number {
    return this.log.steps;
  }

  get tokens(): number {
    return this.log.tokens;
  }

  /** The last training loss, or NaN before any step. */
  get finalLoss(): number {
    return this.log.finalLoss;
  }

  /** The newest checkpoint (a link into checkpoints/); loadCheckpoint reads it, or the run's directory. */
  get checkpointDir(): string {
    return join(this.dir, NEWEST_CHECKPOINT);
  }

  /** The step of the newest complete checkpoint, if any. */
  get checkpointStep(): number | undefined {
    return newestCheckpoint(this.dir)?.step;
  }

  /** Adds a step; with `experts`, also its tokens per expert (recorded every few steps: they are large). */
  record(m: StepMetrics, options: { experts?: boolean } = {}): void {
    this.log.append(m, options);
  }

  /** Adds a validation point, keeping the series ordered by step (a repeated step replaces). */
  recordValidation(point: ValidationPoint): void {
    this.log.recordValidation(point);
  }

  /** Forgets everything after `step` (a trainer resumed from an earlier checkpoint continues from there). */
  truncate(step: number): void {
    this.log.truncate(step);
  }

  /** Writes run.json, the two Arrow files and run.mambalab.json (each replaced atomically). */
  save(): void {
    mkdirSync(this.dir, { recursive: true });
    const record: RunRecord = {
      version: 1,
      id: this.id,
      name: this.name,
      status: this.status,
      created: this.created,
      updated: new Date().toISOString(),
      config: this.config,
      model: this.model,
      ...(this.checkpointStep !== undefined ? { checkpointStep: this.checkpointStep } : {}),
      ...(this.plan ? { plan: this.plan } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
    writeLog(join(this.dir, METRICS_FILE), this.train);
    writeLog(join(this.dir, VALIDATION_FILE), this.validation);
    if (this.experts) writeExperts(join(this.dir, EXPERTS_FILE), this.experts);
    writeFileDurably(join(this.dir, RUN_DISPLAY_FILE), JSON.stringify(displayDocument({ runs: [this.toDoc()], title: this.name }), null, 1) + '\n');
    writeFileDurably(join(this.dir, RUN_FILE), JSON.stringify(record, null, 2) + '\n');
  }

  /** The run as the display schema's run object (a copy: the run goes on logging). */
  toDoc(): RunDoc {
    return {
      id: this.id,
      name: this.name,
      status: this.status,
      model: this.model,
      flopsPerToken: trainingFlopsPerToken(this.config.model, this.config.trainer.seqLen),
      ...this.log.toSeries(),
    };
  }

  [inspect.custom](): string {
    const loss = Number.isFinite(this.finalLoss) ? this.finalLoss.toFixed(3) : '—';
    return `Run ${this.id} [${this.status}] ${this.steps} steps, loss ${loss} (${this.dir})`;
  }
}

/** Reads a run that Run.save() wrote. */
export function loadRun(dir: string): Run {
  const file = join(dir, RUN_FILE);
  if (!existsSync(file)) throw new MambalabError(`loadRun: ${resolve(dir)} is not a run (it has no ${RUN_FILE})`);
  return Run.fromDisk(dir, readRunRecord(file));
}

/** Removes a run's files (a fresh trainer re-running a notebook cell starts its run over). */
export function removeRunFiles(dir: string): void {
  for (const name of [RUN_FILE, METRICS_FILE, VALIDATION_FILE, EXPERTS_FILE, RUN_DISPLAY_FILE]) rmSync(join(dir, name), { force: true });
  for (const name of [NEWEST_CHECKPOINT, CHECKPOINTS_DIR]) rmSync(join(dir, name), { recursive: true, force: true });
}
