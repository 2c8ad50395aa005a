// The types of application/vnd.mambalab.v1+json, mirroring schema/mambalab.v1.schema.json in
// this package: what the kernel sends and the lab extension draws. Change both together, and
// compatibly: version 1 only gains optional fields.

export const MAMBALAB_MIME = 'application/vnd.mambalab.v1+json';
export const SCHEMA_VERSION = 1;

/** One value per logged entry; null in JSON where the value was not finite (a diverged loss). */
export type Series = number[];

export const RUN_STATUSES = ['running', 'done', 'stopped', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const PLOT_KINDS = ['loss', 'savings', 'experts', 'final'] as const;
export type PlotKind = (typeof PLOT_KINDS)[number];

/** What a loss plot can put on its x-axis ('flops' is tokens × the run's flopsPerToken). */
export const X_AXES = ['step', 'tokens', 'wallS', 'flops'] as const;
export type XAxisKey = (typeof X_AXES)[number];

/** Where a logged point sits: every series of a run has these, so it can be drawn on any x-axis. */
export const POSITION_COLUMNS = ['step', 'tokens', 'wallS'] as const;
/** The columns of a run's validation log. */
export const VALIDATION_COLUMNS = [...POSITION_COLUMNS, 'loss'] as const;
/**
 * The columns of a run's training log, one entry per step: the display's train series and the
 * run's metrics.arrow alike. The ones after VALIDATION_COLUMNS are optional in a document;
 * `skipped` (1 where the step's loss or gradient norm was not finite and nothing was applied)
 * is sent only when some step was skipped.
 */
export const TRAIN_COLUMNS = [...VALIDATION_COLUMNS, 'lr', 'gradNorm', 'tokensPerS', 'skipped'] as const;

export type ValidationColumn = (typeof VALIDATION_COLUMNS)[number];
export type TrainColumn = (typeof TRAIN_COLUMNS)[number];

export type ValidationSeries = Record<ValidationColumn, Series>;
export type TrainSeries = ValidationSeries & Partial<Record<Exclude<TrainColumn, ValidationColumn>, Series>>;

export interface ModelSummary {
  family?: string;
  pattern?: string;
  dModel?: number;
  paramsTotal?: number;
  paramsActive?: number;
}

/**
 * How evenly each MoE layer spread its tokens, computed by the kernel from counts and dropped
 * (see balance.ts): entry [i][l] is for step[i] and layer layers[l]. Documents written before
 * kernels sent it lack it.
 */
export interface ExpertBalance {
  /** Assignments in the layer: tokens processed (the sum of its counts) plus dropped. */
  tokens: number[][];
  /** The busiest expert's count over the mean count: 1 is perfectly balanced, numExperts is one expert taking all; null without processed tokens. */
  maxOverMean: Array<Array<number | null>>;
  /** Coefficient of variation of the counts (population std / mean): 0 is perfectly balanced; null without processed tokens. */
  cv: Array<Array<number | null>>;
  /** Dropped over assignments; null without dropped counts or without assignments. */
  droppedFraction: Array<Array<number | null>>;
}

/** counts[i][l][e]: tokens routed to expert e of MoE layer layers[l] at step[i]; dropped[i][l] over capacity. */
export interface ExpertCounts {
  layers: number[];
  numExperts: number;
  step: Series;
  counts: number[][][];
  dropped?: number[][];
  balance?: ExpertBalance;
}

export interface RunDoc {
  id: string;
  name: string;
  status: RunStatus;
  model?: ModelSummary;
  flopsPerToken?: number;
  train: TrainSeries;
  validation?: ValidationSeries;
  experts?: ExpertCounts;
}

export interface SavingsCurve {
  loss: Series;
  baselineAt: Series;
  candidateAt: Series;
  ratio: Series;
}

export interface ComparisonDoc {
  baseline: string;
  candidate: string;
  smoothing: number;
  axis: 'step' | 'tokens';
  baselineFinalLoss: number;
  baselineAt?: number;
  candidateReachesAt?: number | null;
  ratio?: number | null;
  curve: SavingsCurve;
}

/** One configuration of a sweep: its run, the varied field's value there, its final loss. */
export interface FinalLossPoint {
  runId: string;
  value: number | string;
  /** The run's last training loss, EMA-smoothed with the document's smoothing. */
  loss: number;
  /** Where a sweep varies more than one field: the other fields' values ("dModel=128"), one line each. */
  series?: string;
}

/** A sweep's final losses against the value of the field it varies (the MoE-Mamba paper's experts figure). */
export interface FinalLossDoc {
  /** The config field on the x-axis, e.g. numExperts. */
  field: string;
  smoothing: number;
  points: FinalLossPoint[];
}

export interface PlotSpec {
  kind: PlotKind;
  runs?: string[];
  comparison?: number;
  x?: XAxisKey;
  logY?: boolean;
  smoothing?: number;
  showValidation?: boolean;
  title?: string;
}

export interface ProgressDoc {
  runId?: string;
  step: number;
  totalSteps: number;
  loss?: number;
  tokensPerS?: number;
  etaS?: number;
  /** Steps skipped so far because their loss or gradient norm was not finite. */
  skippedSteps?: number;
  /** Something the user should look at now, e.g. a loss spike. */
  warning?: string;
}

/** One output: runs, comparisons between them, the plots to draw, and the live status line. */
export interface DisplayDoc {
  version: typeof SCHEMA_VERSION;
  title?: string;
  runs: RunDoc[];
  comparisons?: ComparisonDoc[];
  /** A sweep's final losses ('final' plots). */
  finalLoss?: FinalLossDoc;
  plots: PlotSpec[];
  progress?: ProgressDoc;
}

/** The runs a plot asks for (all runs when it names none), in the plot's order. */
export function runsOfPlot(doc: DisplayDoc, plot: PlotSpec): RunDoc[] {
  if (!plot.runs) return doc.runs;
  return plot.runs.map((id) => doc.runs.find((run) => run.id === id)).filter((run): run is RunDoc => run !== undefined);
}

/** The name of the run with this id, or the id where the document lacks it. */
export function runName(doc: DisplayDoc, id: string): string {
  return doc.runs.find((run) => run.id === id)?.name ?? id;
}
