// Watching the loss: steps the engine skipped because their loss or gradient norm was not finite
// (it changed no weight or moment: see NativeMetrics.skipped), how many came in a row, and loss
// spikes against a running average. Its state travels in checkpoints, so a resumed run counts
// and warns exactly as the uninterrupted one.
import { MambalabError } from '../errors.js';

/** A loss above this many times its running average is a spike (a warning, nothing more). */
export const LOSS_SPIKE_FACTOR = 3;
/** Weight of the newest loss in the running average (about the last 50 steps). */
const AVERAGE_WEIGHT = 0.02;
/** Applied steps before spikes are looked for: the average needs some history first. */
const SPIKE_WARMUP_STEPS = 20;
/** Consecutive skipped steps after which fit() stops, unless told otherwise. */
export const DEFAULT_MAX_BAD_STEPS = 8;

export interface GuardState {
  /** Steps skipped so far. */
  nonfiniteSteps: number;
  /** Skipped steps since the last applied one. */
  consecutive: number;
  /** Exponential average of the applied steps' losses, before debiasing (kept as is, so a resumed run averages bit for bit alike). */
  lossEma: number;
  /** Applied steps in that average. */
  averagedSteps: number;
}

const FRESH: GuardState = { nonfiniteSteps: 0, consecutive: 0, lossEma: 0, averagedSteps: 0 };

export interface GuardVerdict {
  nonfiniteSteps: number;
  consecutive: number;
  /** loss ÷ running average, when it exceeds LOSS_SPIKE_FACTOR. */
  lossSpike?: number;
}

export class StepGuard {
  private state: GuardState = { ...FRESH };

  /** Counts a step the engine took (skipped or applied) and looks for a spike against the steps before it. */
  observe(loss: number, skipped: boolean): GuardVerdict {
    const s = this.state;
    if (skipped) {
      s.nonfiniteSteps++;
      s.consecutive++;
      return { nonfiniteSteps: s.nonfiniteSteps, consecutive: s.consecutive };
    }
    s.consecutive = 0;
    const average = this.lossAverage;
    const spike = s.averagedSteps >= SPIKE_WARMUP_STEPS && loss > LOSS_SPIKE_FACTOR * average ? loss / average : undefined;
    s.lossEma = (1 - AVERAGE_WEIGHT) * s.lossEma + AVERAGE_WEIGHT * loss;
    s.averagedSteps++;
    return { nonfiniteSteps: s.nonfiniteSteps, consecutive: 0, ...(spike !== undefined ? { lossSpike: spike } : {}) };
  }

  get nonfiniteSteps(): number {
    return this.state.nonfiniteSteps;
  }

  /** Skipped steps since the last applied one. */
  get consecutiveSkipped(): number {
    return this.state.consecutive;
  }

  /** The running average of the applied steps' losses (debiased; NaN before any). */
  get lossAverage(): number {
    const s = this.state;
    return s.averagedSteps > 0 ? s.lossEma / (1 - (1 - AVERAGE_WEIGHT) ** s.averagedSteps) : Number.NaN;
  }

  /** What a checkpoint keeps. */
  save(): GuardState {
    return { ...this.state };
  }

  /** Restores what save() gave; a checkpoint written before the guard existed starts it afresh. */
  restore(state: Partial<GuardState> | undefined): void {
    this.state = { ...FRESH, ...state };
  }
}

/** fit() stopped after too many consecutive non-finite steps; the trainer is at `step`, its weights untouched by them. */
export class TrainingDiverged extends MambalabError {
  override name = 'TrainingDiverged';

  constructor(
    readonly step: number,
    readonly badSteps: number,
    readonly lastGoodCheckpoint: { dir: string; step: number } | undefined,
  ) {
    const where = lastGoodCheckpoint
      ? `the last good checkpoint is ${lastGoodCheckpoint.dir} (step ${lastGoodCheckpoint.step})`
      : 'no checkpoint was written before it (set a checkpoint directory to keep one)';
    super(
      `training diverged at step ${step}: ${badSteps} consecutive steps (${step - badSteps + 1} to ${step}) had a non-finite loss or ` +
        `gradient norm and none of them was applied; stopped without checkpointing; ${where}. ` +
        'A lower learning rate, a longer warmup or stronger gradient clipping usually helps.',
    );
  }
}
