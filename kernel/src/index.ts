// The public API of mambalab: what a notebook calls (README, "Public API"). The rest of
// kernel/src is reachable through its own modules, without that promise.

// Models
export { createModel, loadModel, type Model, type ParameterInfo } from './models/model.js';
export type { ModelConfig } from './models/config.js';
export type { ForwardMetrics, RoutingMode } from './models/passes.js';
export { preset, presetNames, type Preset, type TrainingDefaults } from './models/presets.js';
export { countParameters, type ParameterCount } from './models/params.js';
export { importCheckpoint, type ImportResult } from './models/import/import.js';

// Generation
export { generate } from './generate/generate.js';
export { GenerationInterrupted, type GenerateOptions, type Generation, type GenerateTiming, type GenerateProgress, type FinishReason } from './models/generation.js';

// Training, runs and comparisons
export { Trainer, TrainingInterrupted, type TrainerOptions, type FitOptions, type FitResult, type LoadedCheckpoint } from './train/trainer.js';
export { TrainingDiverged } from './train/guard.js';
export type { StepMetrics } from './train/metrics.js';
export { resumeRun, trainRun, type ResumeRunOptions, type TrainRunOptions } from './train/train-run.js';
export { loadRun, type Run } from './train/runs.js';
export { experiment, type Arm, type ExperimentOptions, type ExperimentResult } from './train/experiment.js';
export { compareRuns, type CompareOptions } from './train/compare.js';
export { sweep, type SweepSpec, type SweepValues, type SweepResult, type SweepPoint } from './display/sweep.js';
export type { ComparisonDoc } from '@mambalab/contract';

// Data
export { defaultC4Slice, type C4SliceOptions } from './corpus/slice.js';
export { openDataset, type Dataset, type OpenDatasetOptions } from './data/dataset.js';
export { loadTextCorpus } from './corpus/text.js';
export { loadTokenizer, type Tokenizer, type TokenizerName } from './corpus/tokenizer.js';
export type { TokenSource, BatchSampler, Split, SamplerState } from './data/source.js';
export type { Batch } from './data/batch.js';

// Display and errors
export { show } from './display/show.js';
export { MambalabError } from './errors.js';
