// The public API of mambalab: what a notebook imports.
export { createModel, loadModel, Model, type ParameterInfo } from './models/model.js';
export { DEFAULT_CONFIG, resolveConfig, MODEL_FAMILIES, type ModelConfig } from './models/config.js';
export { countParameters, type ParameterCount } from './models/params.js';
export { parsePattern, LAYER_KINDS } from './models/pattern.js';
export { preset, presetNames, type Preset, type TrainingDefaults } from './models/presets.js';
export { Trainer, TrainingInterrupted, DEFAULT_TRAINER_OPTIONS, type TrainerOptions, type StepMetrics, type FitOptions, type FitResult } from './train/trainer.js';
export { Run, loadRun, type RunConfig } from './train/runs.js';
export { trainRun, type TrainRunOptions } from './train/train-run.js';
export { compareRuns, ema, PAPER_SMOOTHING, type CompareOptions, type LossCurves } from './train/compare.js';
export { experiment, type Arm, type ExperimentOptions, type ExperimentResult } from './train/experiment.js';
export { lrAt, type Schedule } from './train/schedule.js';
export { readSafetensors, writeSafetensors } from './train/safetensors.js';
export { toBatch, type Batch } from './data/batch.js';
export { loadTextCorpus, GPT2_VOCAB_SIZE, GPT2_END_OF_TEXT } from './data/text.js';
export type { TokenSource, BatchSampler, Split, SamplerState } from './data/source.js';
export { show, toDisplayDoc, type Showable } from './display/show.js';
export { MAMBALAB_MIME, type DisplayDoc, type RunDoc, type ComparisonDoc } from './display/schema.js';
export { MambalabError } from './errors.js';
