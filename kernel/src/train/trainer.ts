// Trains a model: each step runs forward, backward, clipping and AdamW inside the engine,
// off the JS thread; the trainer owns the schedule, the data order, the metrics, the watch on
// non-finite steps and the checkpoints.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Batch } from '../data/batch.js';
import type { SamplerState, TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import type { Model } from '../models/model.js';
import { readSafetensors, writeSafetensors } from '../models/safetensors.js';
import { fittingAccumulation } from './accumulation.js';
import { CheckpointSchedule, CHECKPOINTS_DIR, DEFAULT_KEEP, listCheckpoints, stepDirName, TRAINER_FILE, writeCheckpoint, type CheckpointEntry } from './checkpoints.js';
import { evaluateModel, type EvalSize, type Evaluation } from './evaluate.js';
import { DEFAULT_MAX_BAD_STEPS, StepGuard, TrainingDiverged } from './guard.js';
import type { StepMetrics } from './metrics.js';
import { checkTrainerOptions, DEFAULT_TRAINER_OPTIONS, type TrainerOptions } from './options.js';
import { checkExpertParallel, checkRanks, DEFAULT_RANK_TIMEOUT_S, rowsOf, type Ranks } from './ranks.js';
import { lrAt } from './schedule.js';
import { readTrainerState, refuseNonFinite, type TrainerState } from './trainer-state.js';

export { DEFAULT_TRAINER_OPTIONS, type TrainerOptions } from './options.js';

export interface FitOptions {
  steps: number;
  onStep?: (metrics: StepMetrics) => void;
  /** Evaluate every this many steps (and after the last); 0 only after the last. */
  evalEvery?: number;
  /** Validation batches per evaluation (default 4). */
  evalBatches?: number;
  /** At least this many validation tokens per evaluation, in whole batches (overrides evalBatches). */
  evalTokens?: number;
  /** Evaluate before the first step (default true; a resumed run skips it: its history has that point already). */
  initialEval?: boolean;
  /** Stops at the next step boundary when aborted. */
  signal?: AbortSignal;
  /** Names what is being trained, for watchers (the notebook's live output labels the curve with it). */
  name?: string;
  /** Where periodic checkpoints go (checkpoints/step-N and a `checkpoint` link to the newest; see checkpoints.ts). */
  checkpointDir?: string;
  /** Checkpoint every this many steps (0: not by steps). */
  checkpointEvery?: number;
  /** Checkpoint when this many minutes passed since the last one (0: not by time). */
  checkpointMinutes?: number;
  /** Checkpoints kept, the newest (default 2). */
  keepCheckpoints?: number;
  /** Called just before a periodic checkpoint of `step` is written: a run writes its metrics up to it first. */
  beforeCheckpoint?: (step: number) => void;
  /** Consecutive non-finite steps after which fit() rejects with TrainingDiverged (default 8). */
  maxBadSteps?: number;
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

const OPTIMIZER_FILE = 'optimizer.safetensors';

/** What loadCheckpoint restored, and the newer checkpoints it passed over because they did not load. */
export interface LoadedCheckpoint extends CheckpointEntry {
  passedOver: { dir: string; error: string }[];
}

/** A non-negative integer option of fit(), 0 when left out. */
function countOption(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) throw new MambalabError(`fit: ${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** fit()'s options about evaluation, bad steps and checkpoints, checked. */
function fitSettings(options: FitOptions) {
  const maxBadSteps = options.maxBadSteps ?? DEFAULT_MAX_BAD_STEPS;
  if (!Number.isInteger(maxBadSteps) || maxBadSteps < 1) throw new MambalabError(`fit: maxBadSteps must be a positive integer, got ${maxBadSteps}`);
  const every = countOption('checkpointEvery', options.checkpointEvery);
  const minutes = options.checkpointMinutes ?? 0;
  if (!(minutes >= 0)) throw new MambalabError(`fit: checkpointMinutes must be a non-negative number, got ${minutes}`);
  const keep = options.keepCheckpoints ?? DEFAULT_KEEP;
  if (!Number.isInteger(keep) || keep < 1) throw new MambalabError(`fit: keepCheckpoints must be a positive integer, got ${keep}`);
  const dir = options.checkpointDir;
  if ((every > 0 || minutes > 0) && !dir) throw new MambalabError('fit: checkpointEvery and checkpointMinutes need a checkpointDir to write to');
  return {
    evalEvery: countOption('evalEvery', options.evalEvery),
    evalSize: { batches: options.evalBatches, tokens: options.evalTokens } satisfies EvalSize,
    maxBadSteps,
    checkpoints: dir ? { dir, keep, schedule: new CheckpointSchedule(every, minutes) } : undefined,
  };
}

export class Trainer {
  readonly options: TrainerOptions;
  private fittingNote?: string;
  /** gradAccumulation as the constructor was given it (undefined: chosen for the device's memory). */
  private readonly givenAccumulation?: number;
  private step_ = 0;
  private tokens = 0;
  private elapsedS = 0;
  private sampler?: { source: TokenSource; state: () => SamplerState; next: () => Batch };
  private resumeSampler?: SamplerState;
  private readonly guard = new StepGuard();
  /** The newest checkpoint written or loaded: what a diverged fit points back to. */
  private lastCheckpoint?: CheckpointEntry;
  /** Data parallel: this trainer's rank, once joined. */
  private ranks_?: Ranks;

  constructor(
    readonly model: Model,
    options: Partial<TrainerOptions> = {},
  ) {
    this.givenAccumulation = options.gradAccumulation;
    this.options = { ...DEFAULT_TRAINER_OPTIONS, ...options };
    checkTrainerOptions(this.options);
    if (options.gradAccumulation === undefined) this.options.gradAccumulation = this.fittingAccumulation();
  }

  /** Why gradients accumulate over several micro-batches, when the trainer chose that for the GPU's memory. */
  get accumulationNote(): string | undefined {
    return this.fittingNote;
  }

  private fittingAccumulation(): number {
    const fitting = fittingAccumulation(this.model, this.options.batchSize, this.options.seqLen);
    this.fittingNote = fitting.note;
    return fitting.microBatches;
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.step_;
  }

  lrAt(step: number): number {
    const o = this.options;
    return lrAt(step, { lr: o.lr, minLr: o.minLr, warmupSteps: o.warmupSteps, totalSteps: o.totalSteps || step });
  }

  /** The data-parallel ranks this trainer joined, if any. */
  get ranks(): Ranks | undefined {
    return this.ranks_;
  }

  /** Bytes of AdamW moments this process holds: 0 before the first step; with shardOptimizer, its share alone. */
  get optimizerStateBytes(): number {
    return this.model.engine.optimizerStateBytes;
  }

  /**
   * Bytes of weights (with the GPU's compute copy) and gradients this process holds: 0 before the
   * model is first used; with expertParallel, of the experts its own alone.
   */
  get parameterBytes(): number {
    const m = this.model.engine.parameterMemory;
    return m.weights.bytes + m.compute.bytes + m.gradients.bytes;
  }

  /**
   * Whether this rank holds only part of the state a checkpoint writes, so that checkpoints and
   * stops are collective: its share of the optimizer (shardOptimizer) or its experts (expertParallel).
   */
  private get sharded(): boolean {
    return this.ranks_?.shardOptimizer === true || this.ranks_?.expertParallel === true;
  }

  /** A rank of a sharded run other than rank 0: it hands its share of checkpoints over and writes none. */
  private get handsOver(): boolean {
    return this.sharded && this.ranks_?.rank !== 0;
  }

  /** Rank 0's flag on every rank of a sharded run, whose checkpoints and stops all ranks take together; else this rank's own. */
  private async rankZeros(flag: boolean): Promise<boolean> {
    if (!this.sharded) return flag;
    const [value] = await this.model.engine.fromRankZero(Float64Array.of(flag ? 1 : 0));
    return value === 1;
  }

  /**
   * Data parallel (train/ranks.ts): waits until every rank has joined; from then on each step
   * trains this rank's rows of the global batch and takes the step of the whole batch, summed
   * with the other ranks. Every rank must join with the same trainer options and draw the same
   * batches; it cannot be undone. With shardOptimizer every rank also calls fit with the same
   * options, and saveCheckpoint / writeCheckpoint alike: they are collective (rank 0 writes).
   */
  async joinRanks(ranks: Ranks): Promise<void> {
    if (this.ranks_) throw new MambalabError(`joinRanks: this trainer is already rank ${this.ranks_.rank} of ${this.ranks_.world}`);
    checkRanks(ranks, this.options.batchSize, this.options.gradAccumulation);
    const { rank, world, rendezvous, session, timeoutS = DEFAULT_RANK_TIMEOUT_S, collective = 'shared-memory', shardOptimizer = false, expertParallel = false } = ranks;
    if (collective === 'nccl' && this.model.device !== 'cuda') {
      throw new MambalabError(`joinRanks: collective 'nccl' sums on GPUs, and this model is on the ${this.model.device} (create it with device 'cuda')`);
    }
    if (expertParallel) checkExpertParallel(this.model.config, world);
    await this.model.engine.joinRanks({ rank, world, rendezvous, session, timeoutS, collective, shardOptimizer, expertParallel });
    this.ranks_ = { ...ranks, timeoutS, shardOptimizer, expertParallel };
  }

  /** Steps skipped so far because their loss or gradient norm was not finite. */
  get nonfiniteSteps(): number {
    return this.guard.nonfiniteSteps;
  }

  /**
   * One optimizer step on a batch, in gradAccumulation micro-batches. A step whose loss or
   * gradient norm is not finite changes nothing (the engine decides on the device) and comes
   * back with `skipped: true`.
   */
  async step(batch: Batch | number[][]): Promise<StepMetrics> {
    const whole = this.model.checked(batch);
    const b = this.ranks_ ? rowsOf(whole, this.ranks_) : whole;
    const step = this.step_ + 1;
    const lr = this.lrAt(step);
    const o = this.options;
    if (b.batchSize % o.gradAccumulation !== 0) {
      throw new MambalabError(`step: a batch of ${b.batchSize} rows does not split into gradAccumulation = ${o.gradAccumulation} equal micro-batches`);
    }
    const start = performance.now();
    const optimizer = { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, gradClip: o.gradClip };
    const m = await this.model.engine.trainStep(b.tokens, b.batchSize, b.seqLen + 1, lr, optimizer, o.gradAccumulation);
    const seconds = (performance.now() - start) / 1000;
    const verdict = this.guard.observe(m.loss, m.skipped);
    this.step_ = step;
    this.tokens += whole.batchSize * whole.seqLen;
    this.elapsedS += seconds;
    return {
      step,
      loss: m.loss,
      auxLoss: m.auxLoss,
      experts: m.experts.map((l) => l.counts),
      dropped: m.experts.map((l) => l.dropped),
      lr,
      gradNorm: m.gradNorm,
      cudaGraph: m.cudaGraph,
      tokens: this.tokens,
      tokensPerS: (whole.batchSize * whole.seqLen) / seconds,
      elapsedS: this.elapsedS,
      skipped: m.skipped,
      nonfiniteSteps: verdict.nonfiniteSteps,
      ...(verdict.lossSpike !== undefined ? { lossSpike: verdict.lossSpike } : {}),
    };
  }

  /** Mean loss over fixed validation batches (the same ones every call). */
  async evaluate(data: TokenSource, options: EvalSize = {}): Promise<number> {
    return (await this.evaluation(data, options)).loss;
  }

  /** evaluate(), with the perplexity and the tokens it covered. */
  evaluation(data: TokenSource, options: EvalSize = {}): Promise<Evaluation> {
    const { batchSize, seqLen, gradAccumulation } = this.options;
    return evaluateModel(this.model, data, { batchSize, seqLen, microBatches: gradAccumulation }, options);
  }

  /**
   * Trains for `steps` steps on batches drawn from `data` in a seeded order; with checkpointDir,
   * checkpoints as checkpointEvery / checkpointMinutes say (never after a skipped step); rejects
   * with TrainingDiverged after maxBadSteps skipped steps in a row. Ranks with a sharded
   * optimizer checkpoint and stop when rank 0 does (its schedule, its signal).
   */
  async fit(data: TokenSource, options: FitOptions): Promise<FitResult> {
    const { steps, onStep, signal } = options;
    if (!Number.isInteger(steps) || steps < 1) throw new MambalabError(`fit: steps must be a positive integer, got ${steps}`);
    if (data.vocabSize > this.model.config.vocabSize) {
      throw new MambalabError(`fit: the data's vocabulary (${data.vocabSize}) is larger than the model's (${this.model.config.vocabSize})`);
    }
    const { evalEvery, evalSize, maxBadSteps, checkpoints } = fitSettings(options);
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
      const initialEvalLoss = options.initialEval === false ? Number.NaN : await this.evaluate(data, evalSize);
      const history: StepMetrics[] = [];
      let finalEvalLoss = initialEvalLoss;
      let stopped = false;
      for (let i = 0; i < steps; i++) {
        if (await this.rankZeros(stop?.aborted === true)) {
          stopped = true;
          break;
        }
        const metrics = await this.step(this.sampler.next());
        if ((evalEvery > 0 && metrics.step % evalEvery === 0) || i === steps - 1) {
          metrics.evalLoss = finalEvalLoss = await this.evaluate(data, evalSize);
        }
        history.push(metrics);
        onStep?.(metrics);
        watch?.step(metrics);
        if (this.guard.consecutiveSkipped >= maxBadSteps) throw new TrainingDiverged(metrics.step, this.guard.consecutiveSkipped, this.lastCheckpoint);
        if (await this.rankZeros(checkpoints !== undefined && !metrics.skipped && checkpoints.schedule.due(metrics.step))) {
          if (!checkpoints) throw new MambalabError(`fit: rank 0 checkpoints and this rank (${this.ranks_?.rank}) has no checkpointDir: a sharded optimizer's ranks checkpoint together (give every rank the same fit options)`);
          options.beforeCheckpoint?.(metrics.step);
          this.writeCheckpoint(checkpoints.dir, { keep: checkpoints.keep });
          checkpoints.schedule.written();
        }
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

  /**
   * Writes the model, the AdamW moments and the trainer's position into `dir`, to resume exactly
   * (trainer.json last). Refuses weights that are not finite, naming the parameter. With a
   * sharded optimizer every rank calls it: rank 0 writes the whole optimizer state, gathered
   * from the ranks' shares, and the others only hand theirs over.
   */
  saveCheckpoint(dir: string): void {
    const tensors = this.model.parameters().flatMap((p) => [
      this.model.slotTensor(p.name, 'adam_m', `${p.name}.exp_avg`, p.shape),
      this.model.slotTensor(p.name, 'adam_v', `${p.name}.exp_avg_sq`, p.shape),
    ]);
    // Sharded moment reads are collective (expert parallel: any read of an expert tensor): the
    // same reads in the same order as rank 0's writer makes.
    if (this.handsOver) {
      if (this.ranks_?.expertParallel) for (const p of this.model.parameters()) this.model.slotTensor(p.name, 'value', p.name, p.shape).read();
      for (const t of tensors) t.read();
      return;
    }
    mkdirSync(dir, { recursive: true });
    this.model.saveChecked(dir, refuseNonFinite);
    writeSafetensors(join(dir, OPTIMIZER_FILE), tensors, { step: String(this.step_) });
    const state: TrainerState = {
      step: this.step_,
      optimizerSteps: this.model.engine.stepsDone,
      tokens: this.tokens,
      elapsedS: this.elapsedS,
      options: this.options,
      sampler: this.sampler?.state() ?? this.resumeSampler,
      guard: this.guard.save(),
    };
    writeFileSync(join(dir, TRAINER_FILE), JSON.stringify(state, null, 2) + '\n');
  }

  /**
   * A checkpoint under `root` that appears whole or not at all (root/checkpoints/step-N, with
   * root/checkpoint naming the newest; see checkpoints.ts), keeping the newest `keep` (default 2).
   * Writes nothing when there is one of this step already. Returns its directory. With a sharded
   * optimizer every rank calls it with the same root, and rank 0 writes (see saveCheckpoint).
   */
  writeCheckpoint(root: string, options: { keep?: number } = {}): string {
    // Sharded, the ranks must agree without asking the disk (rank 0 may be renaming into it): every
    // rank has written or loaded the same checkpoints, so the newest of them tells.
    const existing = this.sharded ? (this.lastCheckpoint?.step === this.step_ ? this.lastCheckpoint : undefined) : listCheckpoints(root).find((c) => c.step === this.step_);
    const write = () => {
      if (!this.handsOver) return writeCheckpoint(root, this.step_, (into) => this.saveCheckpoint(into), options.keep);
      this.saveCheckpoint(root);
      return join(root, CHECKPOINTS_DIR, stepDirName(this.step_));  // where rank 0 puts it
    };
    const dir = existing?.dir ?? write();
    this.lastCheckpoint = { dir, step: this.step_ };
    return dir;
  }

  /**
   * Restores a checkpoint into this trainer and its model: `dir` is one checkpoint (saveCheckpoint's),
   * or a directory of them (writeCheckpoint's root), whose newest that loads is taken. Nothing
   * is changed unless a checkpoint loads whole.
   */
  loadCheckpoint(dir: string): LoadedCheckpoint {
    if (existsSync(join(dir, TRAINER_FILE))) return { ...this.restore(dir), passedOver: [] };
    const candidates = listCheckpoints(dir).reverse();
    if (candidates.length === 0) throw new MambalabError(`checkpoint: ${dir} holds no checkpoint (no ${TRAINER_FILE}, no checkpoints/step-*)`);
    const passedOver: LoadedCheckpoint['passedOver'] = [];
    for (const candidate of candidates) {
      try {
        return { ...this.restore(candidate.dir), passedOver };
      } catch (error) {
        if (!(error instanceof MambalabError)) throw error;
        passedOver.push({ dir: candidate.dir, error: error.message });
      }
    }
    throw new MambalabError(`checkpoint: no checkpoint in ${dir} loads:\n${passedOver.map((p) => `  ${p.error}`).join('\n')}`);
  }

  private restore(dir: string): CheckpointEntry {
    const state = readTrainerState(join(dir, TRAINER_FILE));
    const optimizerFile = join(dir, OPTIMIZER_FILE);
    const { tensors } = readSafetensors(optimizerFile);
    const moments = this.model.parameters().flatMap((p) =>
      (['exp_avg', 'exp_avg_sq'] as const).map((suffix) => {
        const t = tensors.get(`${p.name}.${suffix}`);
        if (!t) throw new MambalabError(`checkpoint: ${optimizerFile} has no '${p.name}.${suffix}'`);
        if (t.data.length !== p.numel) throw new MambalabError(`checkpoint: '${p.name}.${suffix}' in ${optimizerFile} has ${t.data.length} values, the model expects ${p.numel}`);
        return { name: p.name, slot: suffix === 'exp_avg' ? ('adam_m' as const) : ('adam_v' as const), data: t.data };
      }),
    );
    this.model.loadWeights(join(dir, 'model.safetensors'));
    for (const m of moments) this.model.writeSlot(m.name, m.slot, m.data);
    Object.assign(this.options, state.options);
    // Micro-batches are this machine's, not those of the one that wrote the checkpoint.
    const given = this.givenAccumulation;
    this.options.gradAccumulation = given !== undefined && this.options.batchSize % given === 0 ? given : this.fittingAccumulation();
    this.step_ = state.step;
    this.tokens = state.tokens;
    this.elapsedS = state.elapsedS;
    this.model.engine.stepsDone = state.optimizerSteps ?? state.step;
    this.guard.restore(state.guard);
    this.sampler = undefined;
    this.resumeSampler = state.sampler;
    this.lastCheckpoint = { dir, step: state.step };
    return this.lastCheckpoint;
  }
}
