// A training step's metrics, declared once: what the trainer returns (StepMetrics), where each
// column of a run's training log comes from (the contract's TRAIN_COLUMNS, which metrics.arrow and
// the display's train series both hold), and the CLI's JSON line (metrics.jsonl and --json). The
// run on disk (runs.ts) and the live display (display/fit-watcher.ts) both keep a MetricsLog.
import {
  POSITION_COLUMNS,
  TRAIN_COLUMNS,
  VALIDATION_COLUMNS,
  type ExpertCounts,
  type RunDoc,
  type TrainColumn,
  type ValidationColumn,
} from '@mambalab/contract';

import { MambalabError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import type { Model } from '../models/model.js';
import { parsePattern } from '../models/pattern.js';

export interface StepMetrics {
  step: number;
  /** Mean next-token cross-entropy (what the papers plot). */
  loss: number;
  /** Load-balancing loss (weighted) added to the objective; 0 without switch routers. */
  auxLoss: number;
  /** Per MoE layer, tokens routed to each expert this step (empty without MoE layers). */
  experts: number[][];
  /** Per MoE layer, assignments dropped over capacity. */
  dropped: number[];
  lr: number;
  gradNorm: number;
  /** The GPU replayed this step as a captured CUDA graph (see README, "CUDA backend"). */
  cudaGraph: boolean;
  /** Tokens trained on so far (inputs, batchSize × seqLen per step). */
  tokens: number;
  tokensPerS: number;
  /** Seconds since this trainer's first step. */
  elapsedS: number;
  /**
   * The loss or the gradient norm was not finite, so the engine applied nothing: no weight or
   * AdamW moment changed, and the optimizer's step count did not advance.
   */
  skipped: boolean;
  /** Steps skipped so far by this trainer (its checkpoints carry the count). */
  nonfiniteSteps: number;
  /** loss ÷ its running average, on steps where that exceeds LOSS_SPIKE_FACTOR (a warning). */
  lossSpike?: number;
  /** Validation loss, on steps where fit() evaluated. */
  evalLoss?: number;
}

/** Where each column of the training log comes from; a new column in the contract must say here. */
const COLUMN_SOURCES: Record<TrainColumn, (m: StepMetrics) => number> = {
  step: (m) => m.step,
  tokens: (m) => m.tokens,
  wallS: (m) => m.elapsedS,
  loss: (m) => m.loss,
  lr: (m) => m.lr,
  gradNorm: (m) => m.gradNorm,
  tokensPerS: (m) => m.tokensPerS,
  skipped: (m) => (m.skipped ? 1 : 0),
};

/** The values of `columns` at a step. */
function row<C extends TrainColumn>(m: StepMetrics, columns: readonly C[]): Record<C, number> {
  return Object.fromEntries(columns.map((column) => [column, COLUMN_SOURCES[column](m)])) as Record<C, number>;
}

export type TrainColumns = Record<TrainColumn, number[]>;
export type ValidationColumns = Record<ValidationColumn, number[]>;
export type ValidationPoint = Record<ValidationColumn, number>;

/** What an earlier session logged (a run read from disk); a part it lacks starts empty. */
export interface LoggedMetrics {
  /** Columns an older run lacks (skipped) are filled in. */
  train?: Partial<TrainColumns> & Pick<TrainColumns, 'step'>;
  validation?: ValidationColumns;
  experts?: ExpertCounts;
}

/**
 * A step as one line of the CLI's metrics.jsonl and --json output, with the snake_case keys that
 * README documents: MoE models add aux_loss, experts and dropped, loss spikes loss_spike,
 * evaluated steps eval_loss and eval_ppl.
 */
export function stepJsonLine(m: StepMetrics, device: Model['device']) {
  return {
    step: m.step,
    loss: m.loss,
    lr: m.lr,
    grad_norm: m.gradNorm,
    tokens: m.tokens,
    tokens_per_s: m.tokensPerS,
    device,
    skipped: m.skipped,
    nonfinite_steps: m.nonfiniteSteps,
    ...(m.experts.length > 0 ? { aux_loss: m.auxLoss, experts: m.experts, dropped: m.dropped } : {}),
    ...(m.lossSpike !== undefined ? { loss_spike: m.lossSpike } : {}),
    ...(m.evalLoss !== undefined ? { eval_loss: m.evalLoss, eval_ppl: Math.exp(m.evalLoss) } : {}),
  };
}

/** A run's JSON line keys that hold wall-clock measurements: the only ones that differ between two runs of one seed. */
export const WALL_CLOCK_KEYS = ['tokens_per_s'] as const;

/** The positions (in the layer pattern) of the layers with experts, in the engine's order. */
export function expertLayers(config: ModelConfig): number[] {
  return parsePattern(config.pattern).flatMap((layer, i) => (layer.includes('E') ? [i] : []));
}

function emptyColumns<K extends string>(keys: readonly K[]): Record<K, number[]> {
  return Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
}

/** A training log read from a run written before some columns existed: those say 0 at every step (no step was skipped then). */
function withDefaults(train: Partial<TrainColumns> & Pick<TrainColumns, 'step'>): TrainColumns {
  return Object.fromEntries(TRAIN_COLUMNS.map((k) => [k, train[k] ?? train.step.map(() => 0)])) as TrainColumns;
}

/** The training columns as a display document carries them: `skipped` only where some step was skipped (documents of healthy runs stay as before it existed). */
export function trainSeries(train: TrainColumns): RunDoc['train'] {
  const { skipped, ...rest } = copyColumns(train);
  return skipped.some((s) => s > 0) ? { ...rest, skipped } : rest;
}

function copyColumns<K extends string>(columns: Record<K, number[]>): Record<K, number[]> {
  return Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, [...(v as number[])]])) as Record<K, number[]>;
}

/**
 * One run's metrics as training goes: a row per step (the contract's TRAIN_COLUMNS), the
 * validation points in step order, and the tokens routed to each expert at the steps recorded.
 */
export class MetricsLog {
  readonly train: TrainColumns;
  readonly validation: ValidationColumns;
  private experts_: ExpertCounts | undefined;

  /** `label` names the log in errors ("run first"); `config` says which layers have experts. */
  constructor(
    private readonly label: string,
    private readonly config: ModelConfig,
    logged: LoggedMetrics = {},
  ) {
    this.train = logged.train ? withDefaults(logged.train) : emptyColumns(TRAIN_COLUMNS);
    this.validation = logged.validation ?? emptyColumns(VALIDATION_COLUMNS);
    this.experts_ = logged.experts;
  }

  /** Tokens routed to each expert of each MoE layer, at the steps recorded. */
  get experts(): ExpertCounts | undefined {
    return this.experts_;
  }

  /** The last step logged (0 before any). */
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

  /**
   * Adds a step, and its validation loss where fit() measured one; with `experts`, also its
   * tokens per expert (recorded every few steps: they are large).
   */
  append(m: StepMetrics, options: { experts?: boolean } = {}): void {
    if (m.step <= this.steps) throw new MambalabError(`${this.label}: step ${m.step} recorded after step ${this.steps}`);
    const values = row(m, TRAIN_COLUMNS);
    for (const column of TRAIN_COLUMNS) this.train[column].push(values[column]);
    if (m.evalLoss !== undefined) this.recordValidation({ ...row(m, POSITION_COLUMNS), loss: m.evalLoss });
    if (options.experts && m.experts.length > 0) this.appendExperts(m);
  }

  private appendExperts(m: StepMetrics): void {
    this.experts_ ??= { layers: expertLayers(this.config), numExperts: m.experts[0]!.length, step: [], counts: [], dropped: [] };
    this.experts_.step.push(m.step);
    this.experts_.counts.push(m.experts.map((layer) => [...layer]));
    this.experts_.dropped!.push([...m.dropped]);
  }

  /** Adds a validation point, keeping the series ordered by step (a repeated step replaces). */
  recordValidation(point: ValidationPoint): void {
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
    if (this.experts_) {
      const keep = this.experts_.step.filter((s) => s <= step).length;
      for (const series of [this.experts_.step, this.experts_.counts, this.experts_.dropped ?? []]) series.length = keep;
    }
  }

  /** A copy of the log as a display document's run holds it (without what it lacks; `skipped` only when a step was). */
  toSeries(): Pick<RunDoc, 'train' | 'validation' | 'experts'> {
    return {
      train: trainSeries(this.train),
      ...(this.validation.step.length > 0 ? { validation: copyColumns(this.validation) } : {}),
      ...(this.experts_ && this.experts_.step.length > 0 ? { experts: structuredClone(this.experts_) } : {}),
    };
  }
}
