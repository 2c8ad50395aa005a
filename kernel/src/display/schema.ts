// The types of application/vnd.mambalab.v1+json, mirroring kernel/schema/mambalab.v1.schema.json
// (the contract with the lab extension: change both together, compatibly).

export const MAMBALAB_MIME = 'application/vnd.mambalab.v1+json';

export type RunStatus = 'running' | 'done' | 'stopped' | 'failed';

export interface TrainSeries {
  step: number[];
  tokens: number[];
  wallS: number[];
  loss: number[];
  lr?: number[];
  gradNorm?: number[];
  tokensPerS?: number[];
}

export interface ValidationSeries {
  step: number[];
  tokens: number[];
  wallS: number[];
  loss: number[];
}

export interface ModelSummary {
  family?: string;
  pattern?: string;
  dModel?: number;
  paramsTotal?: number;
  paramsActive?: number;
}

/** counts[i][l][e]: tokens routed to expert e of MoE layer layers[l] at step[i]; dropped[i][l] over capacity. */
export interface ExpertCounts {
  layers: number[];
  numExperts: number;
  step: number[];
  counts: number[][][];
  dropped?: number[][];
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
  loss: number[];
  baselineAt: number[];
  candidateAt: number[];
  ratio: number[];
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

export interface PlotSpec {
  kind: 'loss' | 'savings' | 'experts';
  runs?: string[];
  comparison?: number;
  x?: 'step' | 'tokens' | 'wallS' | 'flops';
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
}

/** One output: runs, comparisons between them, the plots to draw, and the live status line. */
export interface DisplayDoc {
  version: 1;
  title?: string;
  runs: RunDoc[];
  comparisons?: ComparisonDoc[];
  plots: PlotSpec[];
  progress?: ProgressDoc;
}
