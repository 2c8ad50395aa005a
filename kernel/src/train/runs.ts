// A run on disk: what was trained (run.json), its per-step metrics and validation losses
// (Arrow IPC files, readable by pyarrow and pandas), its last checkpoint, and the display
// document the lab extension opens (run.mambalab.json).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { inspect } from 'node:util';

import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';

import { displayDocument } from '../display/document.js';
import type { ModelSummary, RunDoc, RunStatus } from '../display/schema.js';
import { MambalabError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import type { Model } from '../models/model.js';
import type { StepMetrics, TrainerOptions } from './trainer.js';

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.arrow';
export const VALIDATION_FILE = 'validation.arrow';
export const RUN_DISPLAY_FILE = 'run.mambalab.json';
export const CHECKPOINT_DIR = 'checkpoint';

export interface RunConfig {
  model: ModelConfig;
  trainer: TrainerOptions;
  /** Where the training tokens came from. */
  data?: string;
}

/** run.json */
interface RunRecord {
  version: 1;
  id: string;
  name: string;
  status: RunStatus;
  created: string;
  updated: string;
  config: RunConfig;
  model: ModelSummary;
  /** The step the checkpoint directory holds, if any. */
  checkpointStep?: number;
  error?: string;
}

const TRAIN_COLUMNS = ['step', 'tokens', 'wallS', 'loss', 'lr', 'gradNorm', 'tokensPerS'] as const;
const VALIDATION_COLUMNS = ['step', 'tokens', 'wallS', 'loss'] as const;

export type TrainColumns = Record<(typeof TRAIN_COLUMNS)[number], number[]>;
export type ValidationColumns = Record<(typeof VALIDATION_COLUMNS)[number], number[]>;

/** What the papers count: parameters without the (tied) embedding; all active for dense models. */
export function modelSummary(model: Model): ModelSummary {
  const { nonEmbedding } = model.parameterCount();
  const c = model.config;
  return { family: c.model, pattern: c.pattern, dModel: c.dModel, paramsTotal: nonEmbedding, paramsActive: nonEmbedding };
}

function emptyColumns<K extends string>(keys: readonly K[]): Record<K, number[]> {
  return Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
}

function writeAtomically(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function writeArrow(path: string, columns: Record<string, number[]>): void {
  const arrays = Object.fromEntries(
    Object.entries(columns).map(([k, v]) => [k, k === 'step' ? Int32Array.from(v) : Float64Array.from(v)]),
  );
  writeAtomically(path, tableToIPC(tableFromArrays(arrays), 'file'));
}

function readArrow<K extends string>(path: string, keys: readonly K[]): Record<K, number[]> {
  if (!existsSync(path)) return emptyColumns(keys);
  let table;
  try {
    table = tableFromIPC(readFileSync(path));
  } catch (e) {
    throw new MambalabError(`loadRun: ${path} is not an Arrow IPC file (${(e as Error).message})`);
  }
  const out = emptyColumns(keys);
  for (const key of keys) {
    const column = table.getChild(key);
    if (!column) throw new MambalabError(`loadRun: ${path} has no column '${key}' (has: ${table.schema.fields.map((f) => f.name).join(', ')})`);
    out[key] = Array.from(column.toArray() as ArrayLike<number>, Number);
  }
  return out;
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
  /** One entry per training step, column-wise. */
  readonly train: TrainColumns;
  /** Validation loss at the steps where it was measured (step 0: before training). */
  readonly validation: ValidationColumns;
  checkpointStep?: number;
  error?: string;

  private constructor(dir: string, record: RunRecord, train: TrainColumns, validation: ValidationColumns) {
    this.dir = resolve(dir);
    this.id = record.id;
    this.name = record.name;
    this.status = record.status;
    this.config = record.config;
    this.model = record.model;
    this.created = record.created;
    this.checkpointStep = record.checkpointStep;
    this.error = record.error;
    this.train = train;
    this.validation = validation;
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
    return new Run(dir, record, emptyColumns(TRAIN_COLUMNS), emptyColumns(VALIDATION_COLUMNS));
  }

  /** @internal */
  static fromDisk(dir: string, record: RunRecord): Run {
    return new Run(dir, record, readArrow(join(dir, METRICS_FILE), TRAIN_COLUMNS), readArrow(join(dir, VALIDATION_FILE), VALIDATION_COLUMNS));
  }

  /** The last training step recorded (0 before any). */
  get steps(): number {
    return this.train.step.at(-1) ?? 0;
  }

  get tokens(): number {
    return this.train.tokens.at(-1) ?? 0;
  }

  /** The last training loss, or NaN before any step. */
  get finalLoss(): number {
    return this.train.loss.at(-1) ?? Number.NaN;
  }

  get checkpointDir(): string {
    return join(this.dir, CHECKPOINT_DIR);
  }

  record(m: StepMetrics): void {
    if (m.step <= this.steps) throw new MambalabError(`run ${this.id}: step ${m.step} recorded after step ${this.steps}`);
    const t = this.train;
    t.step.push(m.step);
    t.tokens.push(m.tokens);
    t.wallS.push(m.elapsedS);
    t.loss.push(m.loss);
    t.lr.push(m.lr);
    t.gradNorm.push(m.gradNorm);
    t.tokensPerS.push(m.tokensPerS);
    if (m.evalLoss !== undefined) this.recordValidation({ step: m.step, tokens: m.tokens, wallS: m.elapsedS, loss: m.evalLoss });
  }

  /** Adds a validation point, keeping the series ordered by step (a repeated step replaces). */
  recordValidation(point: { step: number; tokens: number; wallS: number; loss: number }): void {
    const v = this.validation;
    let at = v.step.findIndex((s) => s >= point.step);
    if (at === -1) at = v.step.length;
    const replace = v.step[at] === point.step ? 1 : 0;
    for (const key of VALIDATION_COLUMNS) v[key].splice(at, replace, point[key]);
  }

  /** Forgets everything after `step` (a trainer resumed from an earlier checkpoint continues from there). */
  truncate(step: number): void {
    const keepTrain = this.train.step.filter((s) => s <= step).length;
    for (const key of TRAIN_COLUMNS) this.train[key].length = keepTrain;
    const keepValidation = this.validation.step.filter((s) => s <= step).length;
    for (const key of VALIDATION_COLUMNS) this.validation[key].length = keepValidation;
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
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
    writeArrow(join(this.dir, METRICS_FILE), this.train);
    writeArrow(join(this.dir, VALIDATION_FILE), this.validation);
    writeAtomically(join(this.dir, RUN_DISPLAY_FILE), JSON.stringify(displayDocument({ runs: [this.toDoc()], title: this.name }), null, 1) + '\n');
    writeAtomically(join(this.dir, RUN_FILE), JSON.stringify(record, null, 2) + '\n');
  }

  /** The run as the display schema's run object. */
  toDoc(): RunDoc {
    const copy = <K extends string>(c: Record<K, number[]>) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, [...(v as number[])]])) as Record<K, number[]>;
    return {
      id: this.id,
      name: this.name,
      status: this.status,
      model: this.model,
      train: copy(this.train),
      ...(this.validation.step.length > 0 ? { validation: copy(this.validation) } : {}),
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
  let record: RunRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch (e) {
    throw new MambalabError(`loadRun: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (record.version !== 1) throw new MambalabError(`loadRun: ${file} has version ${JSON.stringify(record.version)}, this mambalab reads version 1`);
  return Run.fromDisk(dir, record);
}

/** Removes a run's files (a fresh trainer re-running a notebook cell starts its run over). */
export function removeRunFiles(dir: string): void {
  for (const name of [RUN_FILE, METRICS_FILE, VALIDATION_FILE, RUN_DISPLAY_FILE]) rmSync(join(dir, name), { force: true });
  rmSync(join(dir, CHECKPOINT_DIR), { recursive: true, force: true });
}
