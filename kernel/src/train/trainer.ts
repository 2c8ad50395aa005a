// Trains a model: each step runs forward, backward, clipping and AdamW inside the engine,
// off the JS thread; the trainer owns the schedule, the data order and the metrics.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Batch } from '../data/batch.js';
import type { SamplerState, TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import { shaped, type Shape } from '../json-shape.js';
import type { Model } from '../models/model.js';
import { readSafetensors, writeSafetensors } from '../models/safetensors.js';
import type { StepMetrics } from './metrics.js';
import { lrAt } from './schedule.js';

export interface TrainerOptions {
  /** Peak learning rate. */
  lr: number;
  /** Floor the cosine decays to. */
  minLr: number;
  warmupSteps: number;
  /** Steps the cosine spans (fit() sets it from its `steps` when left 0). */
  totalSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global-norm clipping threshold; 0 turns clipping off. */
  gradClip: number;
  batchSize: number;
  seqLen: number;
  /** Seed of the training batch order. */
  seed: number;
}

export const DEFAULT_TRAINER_OPTIONS: TrainerOptions = {
  lr: 1e-3,
  minLr: 1e-5,
  warmupSteps: 0,
  totalSteps: 0,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1.0,
  batchSize: 8,
  seqLen: 128,
  seed: 0,
};

export interface FitOptions {
  steps: number;
  onStep?: (metrics: StepMetrics) => void;
  /** Evaluate every this many steps (and after the last); 0 only after the last. */
  evalEvery?: number;
  evalBatches?: number;
  /** Stops at the next step boundary when aborted. */
  signal?: AbortSignal;
  /** Names what is being trained, for watchers (the notebook's live output labels the curve with it). */
  name?: string;
}

export interface FitResult {
  steps: number;
  stopped: boolean;
  history: StepMetrics[];
  initialEvalLoss: number;
  finalEvalLoss: number;
}

/**
 * Watches every fit() from outside the core. The Jupyter kernel installs one that draws
 * the training live and stops it on interrupt; the core itself never imports a notebook.
 */
export interface FitWatcher {
  /** Called once validation passed, before the first step; undefined watches nothing. */
  start(trainer: Trainer, options: FitOptions): FitWatch | undefined;
}

export interface FitWatch {
  /**
   * Aborting it stops the fit at the next step boundary, and fit() then rejects with
   * TrainingInterrupted (an interrupt ends the code that awaited the fit, as in Python).
   */
  signal?: AbortSignal;
  step(metrics: StepMetrics): void;
  end(outcome: { result: FitResult } | { error: unknown }): void;
}

/** fit() stopped by its watcher (the notebook's interrupt); `result` holds what was trained. */
export class TrainingInterrupted extends MambalabError {
  override name = 'TrainingInterrupted';
  declare readonly result: FitResult;

  constructor(message: string, result: FitResult) {
    super(message);
    // Kept off the printed error: a notebook shows the message, not the whole history.
    Object.defineProperty(this, 'result', { value: result, enumerable: false });
    this.stack = `${this.name}: ${message}`;
  }
}

let fitWatcher: FitWatcher | undefined;

/** Installs the watcher of all fit() calls in this process; returns the one it replaces. */
export function setFitWatcher(watcher: FitWatcher | undefined): FitWatcher | undefined {
  const previous = fitWatcher;
  fitWatcher = watcher;
  return previous;
}

// A batch is one Int32Array of batchSize × (seqLen + 1) ids.
const MAX_BATCH_IDS = 2 ** 31 - 1;

/** Throws a MambalabError naming `${label}.<field>` at the first option that is not a trainer's. */
function checkOptions(options: TrainerOptions, label: string): void {
  for (const [key, value] of Object.entries(options)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new MambalabError(`${label}.${key}: expected a non-negative number, got ${JSON.stringify(value)}`);
    }
  }
  if (options.lr <= 0) throw new MambalabError(`${label}.lr: expected a positive number, got ${options.lr}`);
  if (options.beta1 >= 1 || options.beta2 >= 1) throw new MambalabError(`${label}.beta1/beta2: expected values below 1`);
  for (const key of ['batchSize', 'seqLen'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      throw new MambalabError(`${label}.${key}: expected a positive integer, got ${options[key]}`);
    }
  }
  if (options.batchSize * (options.seqLen + 1) > MAX_BATCH_IDS) {
    throw new MambalabError(`${label}.batchSize × (seqLen + 1) = ${options.batchSize * (options.seqLen + 1)} ids, more than one batch holds (${MAX_BATCH_IDS})`);
  }
}

/** trainer.json, what saveCheckpoint writes besides the safetensors files. */
interface TrainerState {
  step: number;
  tokens: number;
  elapsedS: number;
  options: TrainerOptions;
  sampler?: SamplerState;
}

const STATE_SHAPE: Shape = {
  step: 'count',
  tokens: 'count',
  elapsedS: 'number',
  options: { '*': 'any' },
  'sampler?': { seed: 'number', batches: 'count', 'rngState?': 'number', 'epoch?': 'count', 'position?': 'count', 'seqLen?': 'count' },
};

/** Reads and checks trainer.json; its options, over `current`, as the constructor checks them. */
function readTrainerState(file: string, current: TrainerOptions): TrainerState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`checkpoint: cannot read ${file} (${(e as Error).message})`);
  }
  let state: TrainerState;
  try {
    state = shaped<TrainerState>(file, parsed, STATE_SHAPE);
  } catch (e) {
    throw new MambalabError(`checkpoint: ${(e as Error).message}`);
  }
  const options = { ...current, ...state.options };
  checkOptions(options, `checkpoint: ${file}: options`);
  // The sampler resumes with these options, from a generator's state or an epoch and position.
  const { sampler } = state;
  for (const key of ['seed', 'seqLen'] as const) {
    if (sampler?.[key] !== undefined && sampler[key] !== options[key]) {
      throw new MambalabError(`checkpoint: ${file}: sampler.${key} is ${sampler[key]}, but options.${key} is ${options[key]}: the file is damaged`);
    }
  }
  if (sampler && sampler.rngState === undefined && (sampler.epoch === undefined || sampler.position === undefined)) {
    throw new MambalabError(`checkpoint: ${file}: sampler has neither rngState nor an epoch and position: the file is damaged`);
  }
  return state;
}

const EVAL_SEED = 0x5eed;
const OPTIMIZER_FILE = 'optimizer.safetensors';
/** The AdamW moments in optimizer.safetensors: each parameter's name with this suffix, and its engine slot. */
const MOMENTS = [
  ['exp_avg', 'adam_m'],
  ['exp_avg_sq', 'adam_v'],
] as const;
const TRAINER_FILE = 'trainer.json';

export class Trainer {
  readonly options: TrainerOptions;
  private step_ = 0;
  private tokens = 0;
  private elapsedS = 0;
  private sampler?: { source: TokenSource; state: () => SamplerState; next: () => Batch };
  private resumeSampler?: SamplerState;

  constructor(
    readonly model: Model,
    options: Partial<TrainerOptions> = {},
  ) {
    this.options = { ...DEFAULT_TRAINER_OPTIONS, ...options };
    checkOptions(this.options, 'trainer');
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.step_;
  }

  lrAt(step: number): number {
    const o = this.options;
    return lrAt(step, { lr: o.lr, minLr: o.minLr, warmupSteps: o.warmupSteps, totalSteps: o.totalSteps || step });
  }

  /** One optimizer step on a batch. */
  async step(batch: Batch | number[][]): Promise<StepMetrics> {
    const b = this.model.checked(batch);
    const step = this.step_ + 1;
    const lr = this.lrAt(step);
    const o = this.options;
    const start = performance.now();
    const { loss, auxLoss, gradNorm, experts, cudaGraph } = await this.model.engine.trainStep(b.tokens, b.batchSize, b.seqLen + 1, lr, {
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      gradClip: o.gradClip,
    });
    const seconds = (performance.now() - start) / 1000;
    this.step_ = step;
    this.tokens += b.batchSize * b.seqLen;
    this.elapsedS += seconds;
    return {
      step,
      loss,
      auxLoss,
      experts: experts.map((l) => l.counts),
      dropped: experts.map((l) => l.dropped),
      lr,
      gradNorm,
      cudaGraph,
      tokens: this.tokens,
      tokensPerS: (b.batchSize * b.seqLen) / seconds,
      elapsedS: this.elapsedS,
    };
  }

  /** Mean loss over fixed validation batches (the same ones every call). */
  async evaluate(data: TokenSource, options: { batches?: number } = {}): Promise<number> {
    const sampler = data.sampler('validation', { batchSize: this.options.batchSize, seqLen: this.options.seqLen, seed: EVAL_SEED });
    const n = options.batches ?? 4;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const b = sampler.next();
      total += (await this.model.engine.evaluate(b.tokens, b.batchSize, b.seqLen + 1)).loss;
    }
    return total / n;
  }

  /** Trains for `steps` steps on batches drawn from `data` in a seeded order. */
  async fit(data: TokenSource, options: FitOptions): Promise<FitResult> {
    const { steps, onStep, evalEvery = 0, evalBatches = 4, signal } = options;
    if (!Number.isInteger(steps) || steps < 1) throw new MambalabError(`fit: steps must be a positive integer, got ${steps}`);
    if (data.vocabSize > this.model.config.vocabSize) {
      throw new MambalabError(`fit: the data's vocabulary (${data.vocabSize}) is larger than the model's (${this.model.config.vocabSize})`);
    }
    if (this.options.totalSteps === 0) this.options.totalSteps = this.step_ + steps;
    if (!this.sampler || this.sampler.source !== data) {
      const s = data.sampler('train', {
        batchSize: this.options.batchSize,
        seqLen: this.options.seqLen,
        seed: this.options.seed,
        resume: this.resumeSampler,
      });
      this.sampler = { source: data, state: () => s.state(), next: () => s.next() };
      this.resumeSampler = undefined;
    }
    const watch = fitWatcher?.start(this, options);
    const stop = watch?.signal && signal ? AbortSignal.any([signal, watch.signal]) : (watch?.signal ?? signal);
    let result: FitResult;
    try {
      const initialEvalLoss = await this.evaluate(data, { batches: evalBatches });
      const history: StepMetrics[] = [];
      let finalEvalLoss = initialEvalLoss;
      let stopped = false;
      for (let i = 0; i < steps; i++) {
        if (stop?.aborted) {
          stopped = true;
          break;
        }
        const metrics = await this.step(this.sampler.next());
        if ((evalEvery > 0 && metrics.step % evalEvery === 0) || i === steps - 1) {
          metrics.evalLoss = finalEvalLoss = await this.evaluate(data, { batches: evalBatches });
        }
        history.push(metrics);
        onStep?.(metrics);
        watch?.step(metrics);
      }
      result = { steps: history.length, stopped, history, initialEvalLoss, finalEvalLoss };
    } catch (error) {
      watch?.end({ error });
      throw error;
    }
    if (watch?.signal?.aborted) {
      const label = options.name ? `${options.name}: ` : '';
      const error = new TrainingInterrupted(`${label}stopped after ${result.steps} of ${steps} steps (at step ${this.step_})`, result);
      watch.end({ error });
      throw error;
    }
    watch?.end({ result });
    return result;
  }

  /** Writes the model, the AdamW moments and the trainer's position, to resume exactly. */
  saveCheckpoint(dir: string): void {
    mkdirSync(dir, { recursive: true });
    this.model.save(dir);
    const tensors = this.model.parameters().flatMap((p) => [
      { name: `${p.name}.exp_avg`, shape: p.shape, data: this.model.readSlot(p.name, 'adam_m') },
      { name: `${p.name}.exp_avg_sq`, shape: p.shape, data: this.model.readSlot(p.name, 'adam_v') },
    ]);
    writeSafetensors(join(dir, OPTIMIZER_FILE), tensors, { step: String(this.step_) });
    const state = { step: this.step_, tokens: this.tokens, elapsedS: this.elapsedS, options: this.options, sampler: this.sampler?.state() };
    writeFileSync(join(dir, TRAINER_FILE), JSON.stringify(state, null, 2) + '\n');
  }

  /**
   * Restores what saveCheckpoint wrote into this trainer and its model. Every file is read and
   * checked before anything is restored, so a damaged checkpoint leaves the trainer as it was.
   */
  loadCheckpoint(dir: string): void {
    const file = join(dir, TRAINER_FILE);
    if (!existsSync(file)) throw new MambalabError(`checkpoint: ${file} does not exist`);
    const state = readTrainerState(file, this.options);
    const optimizerFile = join(dir, OPTIMIZER_FILE);
    const { tensors } = readSafetensors(optimizerFile);
    const moments = this.model.parameters().flatMap((p) =>
      MOMENTS.map(([suffix, slot]) => {
        const t = tensors.get(`${p.name}.${suffix}`);
        if (!t) throw new MambalabError(`checkpoint: ${optimizerFile} has no '${p.name}.${suffix}'`);
        if (t.data.length !== p.numel) throw new MambalabError(`checkpoint: '${p.name}.${suffix}' in ${optimizerFile} has ${t.data.length} values, the parameter ${p.numel}`);
        return { name: p.name, slot, data: t.data };
      }),
    );
    const weightsFile = join(dir, 'model.safetensors');
    this.model.loadWeights(weightsFile); // checks every tensor before it writes any
    for (const m of moments) this.model.writeSlot(m.name, m.slot, m.data);
    Object.assign(this.options, state.options);
    this.step_ = state.step;
    this.tokens = state.tokens;
    this.elapsedS = state.elapsedS;
    this.model.engine.stepsDone = state.step;
    this.sampler = undefined;
    this.resumeSampler = state.sampler;
  }
}
