// The data the kernel sends, as TypeScript types. They mirror kernel/schema/mambalab.v1.schema.json
// (the contract); parseBundle in validate.ts checks data against that schema before any code
// here sees it, so these types can be trusted after parsing.

export const MIME_TYPE = 'application/vnd.mambalab.v1+json';
export const SCHEMA_VERSION = 1;

export type Series = number[];
export type RunStatus = 'running' | 'done' | 'stopped' | 'failed';
export type XAxisKey = 'step' | 'tokens' | 'wallS' | 'flops';
export type PlotKind = 'loss' | 'savings' | 'experts';

export interface TrainSeries {
  step: Series;
  tokens: Series;
  wallS: Series;
  loss: Series;
  lr?: Series;
  gradNorm?: Series;
  tokensPerS?: Series;
}

export interface ValidationSeries {
  step: Series;
  tokens: Series;
  wallS: Series;
  loss: Series;
}

/** counts[i][l][e]: tokens the router sent to expert e of layer layers[l] at step[i]. */
export interface ExpertCounts {
  layers: number[];
  numExperts: number;
  step: Series;
  counts: number[][][];
  dropped?: number[][];
}

export interface Run {
  id: string;
  name: string;
  status: RunStatus;
  model?: { family?: string; pattern?: string; dModel?: number; paramsTotal?: number; paramsActive?: number };
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

export interface Comparison {
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

export interface Progress {
  runId?: string;
  step: number;
  totalSteps: number;
  loss?: number;
  tokensPerS?: number;
  etaS?: number;
}

export interface Bundle {
  version: 1;
  title?: string;
  runs: Run[];
  comparisons?: Comparison[];
  plots: PlotSpec[];
  progress?: Progress;
}

/** The runs a plot asks for (all runs when it names none), in the plot's order. */
export function runsOfPlot(bundle: Bundle, plot: PlotSpec): Run[] {
  if (!plot.runs) return bundle.runs;
  return plot.runs.map((id) => bundle.runs.find((run) => run.id === id)).filter((run): run is Run => run !== undefined);
}
