// A run's files, written and read: run.json (what was trained) and the Arrow logs
// (metrics.arrow, validation.arrow, experts.arrow). Reading checks what the rest of mambalab
// relies on (a valid model config, steps in order, whole non-negative counts laid out as the
// model's MoE layers), so a damaged file is a MambalabError naming it, never a TypeError, a
// loop or a curve of garbage later.
import { existsSync, readFileSync, rmSync } from 'node:fs';

import { RUN_STATUSES, type ExpertCounts, type ModelSummary, type RunStatus } from '@mambalab/contract';
import { DataType, tableFromArrays, tableToIPC, type Table } from 'apache-arrow';

import { readArrowFile } from '../data/arrow-file.js';
import { MambalabError } from '../errors.js';
import { writeFileDurably } from '../files.js';
import { shaped, type Shape } from '../json-shape.js';
import { resolveConfig, type ModelConfig } from '../models/config.js';
import { expertLayers } from './metrics.js';
import type { TrainerOptions } from './options.js';

export interface RunConfig {
  model: ModelConfig;
  trainer: TrainerOptions;
  /** Where the training tokens came from. */
  data?: string;
}

/** How a run trains, so that resumeRun() can go on as trainRun() would have (run.json's `plan`). */
export interface RunPlan {
  /** The step training ends at. */
  untilStep: number;
  evalEvery: number;
  evalBatches?: number;
  evalTokens?: number;
  checkpointEvery: number;
  checkpointMinutes: number;
  keepCheckpoints: number;
  expertsEvery: number;
  maxBadSteps: number;
}

/** run.json */
export interface RunRecord {
  version: 1;
  id: string;
  name: string;
  status: RunStatus;
  created: string;
  updated: string;
  config: RunConfig;
  model: ModelSummary;
  /** The step of the newest checkpoint when run.json was written (the checkpoints themselves are the truth). */
  checkpointStep?: number;
  /** Written by trainRun since runs could be resumed. */
  plan?: RunPlan;
  error?: string;
}

const RECORD_SHAPE: Shape = {
  id: 'string',
  name: 'string',
  status: 'string',
  created: 'string',
  updated: 'string',
  config: { model: { '*': 'any' }, trainer: { batchSize: 'count', seqLen: 'count', '*': 'number' }, 'data?': 'string' },
  model: { 'family?': 'string', 'pattern?': 'string', 'dModel?': 'count', 'paramsTotal?': 'number', 'paramsActive?': 'number' },
  'checkpointStep?': 'count',
  'plan?': {
    untilStep: 'count',
    evalEvery: 'count',
    'evalBatches?': 'count',
    'evalTokens?': 'count',
    checkpointEvery: 'count',
    checkpointMinutes: 'number',
    keepCheckpoints: 'count',
    expertsEvery: 'count',
    maxBadSteps: 'count',
  },
  'error?': 'string',
};

/** Reads and checks run.json. */
export function readRunRecord(file: string): RunRecord {
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`loadRun: ${file} is not valid JSON (${(e as Error).message})`);
  }
  const version = (record as { version?: unknown } | null)?.version;
  if (version !== 1) throw new MambalabError(`loadRun: ${file} has version ${JSON.stringify(version)}, this mambalab reads version 1`);
  const wrong = (why: string): never => {
    throw new MambalabError(`loadRun: ${why}`);
  };
  let checked: RunRecord;
  try {
    checked = shaped<RunRecord>(file, record, RECORD_SHAPE);
  } catch (e) {
    return wrong((e as Error).message);
  }
  if (checked.id === '') wrong(`${file}: its id is empty`);
  if (!RUN_STATUSES.includes(checked.status)) wrong(`${file}: status is ${JSON.stringify(checked.status)}, expected one of ${RUN_STATUSES.join(', ')}`);
  try {
    resolveConfig(checked.config.model);
  } catch (e) {
    wrong(`${file}: its model's ${(e as Error).message}`);
  }
  return checked;
}

/** Writes a log's columns (one row per entry; steps as Int32, the rest as Float64), durably: a run's metrics are on disk before the checkpoint written after them. */
export function writeLog(path: string, columns: Record<string, number[]>): void {
  const arrays = Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, k === 'step' ? Int32Array.from(v) : Float64Array.from(v)]));
  writeFileDurably(path, tableToIPC(tableFromArrays(arrays), 'file'));
}

function readTable(path: string): Table {
  return readArrowFile(path, (why) => new MambalabError(`loadRun: ${path} is not an Arrow IPC file (${why})`));
}

/** Training columns that runs written before them lack (MetricsLog fills them in). */
export const LATER_TRAIN_COLUMNS: readonly string[] = ['skipped'];

/** The numeric columns `keys` of a table as numbers, but for `later` ones it lacks. */
function numericColumns<K extends string>(path: string, table: Table, keys: readonly K[], later: readonly string[] = []): Record<K, number[]> {
  const read = (key: K): [K, number[]][] => {
    const column = table.getChild(key);
    if (!column && later.includes(key)) return [];
    if (!column) throw new MambalabError(`loadRun: ${path} has no column '${key}' (has: ${table.schema.fields.map((f) => f.name).join(', ')})`);
    if (!DataType.isInt(column.type) && !DataType.isFloat(column.type)) throw new MambalabError(`loadRun: ${path}: column '${key}' holds ${column.type}, not numbers`);
    return [[key, Array.from(column.toArray() as ArrayLike<number>, Number)]];
  };
  return Object.fromEntries(keys.flatMap(read)) as Record<K, number[]>;
}

function damaged(path: string, row: number, why: string): MambalabError {
  return new MambalabError(`loadRun: ${path}: row ${row} ${why}: the file is damaged`);
}

/** Steps are whole, from `first` on, and strictly increasing, row by row (`every` rows share one). */
function checkSteps(path: string, steps: number[], first: number, every = 1): void {
  for (let r = 0; r < steps.length; r += every) {
    const step = steps[r]!;
    const previous = r === 0 ? first - 1 : steps[r - every]!;
    if (!Number.isSafeInteger(step) || step <= previous) throw damaged(path, r, `has step ${step}${r === 0 ? '' : ` after step ${previous}`}`);
  }
}

/** Values that are whole counts (integers ≥ 0) or, without `whole`, finite numbers ≥ 0. */
function checkNonNegative(path: string, name: string, values: number[], whole: boolean): void {
  const bad = values.findIndex((v) => !(whole ? Number.isSafeInteger(v) : Number.isFinite(v)) || v < 0);
  if (bad >= 0) throw damaged(path, bad, `has ${name} ${values[bad]}`);
}

/**
 * A log of steps (metrics.arrow: from step 1; validation.arrow: from step 0, the loss before
 * training): the columns `keys`, steps in order, tokens and seconds non-negative. Undefined
 * when there is no file (nothing logged yet).
 */
export function readLog<K extends string>(path: string, keys: readonly K[], firstStep: number, later: readonly string[] = []): Record<K, number[]> | undefined {
  if (!existsSync(path)) return undefined;
  const columns = numericColumns(path, readTable(path), keys, later);
  const column = (name: string) => (columns as Record<string, number[]>)[name] ?? [];
  checkSteps(path, column('step'), firstStep);
  checkNonNegative(path, 'tokens', column('tokens'), true);
  checkNonNegative(path, 'wallS', column('wallS'), false);
  return columns;
}

/** experts.arrow: one row per (step, MoE layer): step, layer, dropped, expert_0 … expert_{E−1}. */
export function writeExperts(path: string, e: ExpertCounts): void {
  const rows = e.step.length * e.layers.length;
  const columns: Record<string, number[]> = { step: [], layer: [], dropped: [] };
  for (let x = 0; x < e.numExperts; x++) columns[`expert_${x}`] = [];
  e.step.forEach((step, i) => {
    e.layers.forEach((layer, l) => {
      columns['step']!.push(step);
      columns['layer']!.push(layer);
      columns['dropped']!.push(e.dropped?.[i]?.[l] ?? 0);
      for (let x = 0; x < e.numExperts; x++) columns[`expert_${x}`]!.push(e.counts[i]![l]![x]!);
    });
  });
  if (rows > 0) writeLog(path, columns);
  else rmSync(path, { force: true });
}

/** Reads experts.arrow, which must hold the rows of the model's MoE layers, in order, at each recorded step. */
export function readExperts(path: string, config: ModelConfig): ExpertCounts | undefined {
  if (!existsSync(path)) return undefined;
  const table = readTable(path);
  const layers = expertLayers(config);
  const experts = Array.from({ length: config.numExperts }, (_, x) => `expert_${x}`);
  const named = table.schema.fields.filter((f) => f.name.startsWith('expert_')).length;
  if (layers.length === 0 || named !== experts.length) {
    throw new MambalabError(`loadRun: ${path} has ${named} expert columns, but the run's model has ${layers.length} MoE layers of ${config.numExperts} experts`);
  }
  const columns = numericColumns(path, table, ['step', 'layer', 'dropped', ...experts]);
  const [step, layer, dropped] = [columns['step']!, columns['layer']!, columns['dropped']!];
  if (step.length % layers.length !== 0) throw damaged(path, step.length - 1, `ends a step short of its ${layers.length} MoE layers`);
  checkSteps(path, step, 1, layers.length);
  for (const name of ['dropped', ...experts]) checkNonNegative(path, name, columns[name]!, true);
  const out: ExpertCounts = { layers, numExperts: experts.length, step: [], counts: [], dropped: [] };
  for (let r = 0; r < step.length; r += layers.length) {
    const rows = layers.map((_, l) => r + l);
    const odd = rows.find((row, l) => step[row] !== step[r] || layer[row] !== layers[l]);
    if (odd !== undefined) throw damaged(path, odd, `is step ${step[odd]}, layer ${layer[odd]}, where step ${step[r]}, layer ${layers[odd - r]} belongs`);
    out.step.push(step[r]!);
    out.counts.push(rows.map((row) => experts.map((name) => columns[name]![row]!)));
    out.dropped!.push(rows.map((row) => dropped[row]!));
  }
  return out;
}
