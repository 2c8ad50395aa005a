// Training-step savings as the MoE-Mamba paper (arXiv 2401.04081) measures them: smooth each
// run's training loss with an EMA, then divide the steps (or tokens) the baseline needs to
// reach a loss by what the candidate needs for the same loss. "2.2× fewer steps" is this
// ratio at the baseline's final loss; the curve repeats it over the loss levels both reach.
import { ema, type ComparisonDoc, type SavingsCurve } from '@mambalab/contract';

import { MambalabError } from '../errors.js';

/** The paper's EMA weight on the newest loss (over 100k steps). */
export const PAPER_SMOOTHING = 0.001;

export interface CompareOptions {
  /** EMA weight α of the newest loss, in (0, 1]; 1 compares raw losses. Default 0.001 (the paper). */
  smoothing?: number;
  /** Measure where a loss is reached in steps (default) or in training tokens. */
  axis?: 'step' | 'tokens';
  /** How many loss levels the savings curve has (default 50). */
  levels?: number;
}

/** What compareRuns reads: a Run, or any curve with these columns. */
export interface LossCurves {
  id: string;
  train: { step: ArrayLike<number>; tokens: ArrayLike<number>; loss: ArrayLike<number> };
}

/**
 * Where a curve first reaches `level` (y ≤ level): between the last point above it and the
 * first point at or below it, by linear interpolation; null if it never does.
 */
export function firstReach(x: ArrayLike<number>, y: ArrayLike<number>, level: number): number | null {
  for (let i = 0; i < y.length; i++) {
    const yi = y[i]!;
    if (yi > level) continue;
    if (i === 0) return x[0]!;
    const y0 = y[i - 1]!;
    const x0 = x[i - 1]!;
    return x0 + ((y0 - level) / (y0 - yi)) * (x[i]! - x0);
  }
  return null;
}

function checked(run: LossCurves, role: string): { id: string; x: (axis: 'step' | 'tokens') => ArrayLike<number>; loss: ArrayLike<number> } {
  if (!run || typeof run !== 'object' || !run.train) throw new MambalabError(`compareRuns: the ${role} must be a run (or { id, train: { step, tokens, loss } })`);
  const { step, tokens, loss } = run.train;
  if (!step || !tokens || !loss) throw new MambalabError(`compareRuns: the ${role} '${run.id}' lacks train.step, train.tokens or train.loss`);
  if (loss.length === 0) throw new MambalabError(`compareRuns: the ${role} '${run.id}' has no training steps`);
  if (step.length !== loss.length || tokens.length !== loss.length) {
    throw new MambalabError(`compareRuns: the ${role} '${run.id}' has ${step.length} steps, ${tokens.length} token counts and ${loss.length} losses; expected equal lengths`);
  }
  for (let i = 0; i < loss.length; i++) {
    if (!Number.isFinite(loss[i]!)) throw new MambalabError(`compareRuns: the ${role} '${run.id}' has a non-finite loss (${loss[i]}) at step ${step[i]}`);
  }
  return { id: run.id, x: (axis) => (axis === 'step' ? step : tokens), loss };
}

function savingsCurve(xb: ArrayLike<number>, sb: number[], xc: ArrayLike<number>, sc: number[], levels: number): SavingsCurve {
  const curve: SavingsCurve = { loss: [], baselineAt: [], candidateAt: [], ratio: [] };
  // Levels strictly below both starting losses (where neither run is at its first point)
  // down to the lowest loss both runs reach.
  const hi = Math.min(sb[0]!, sc[0]!);
  const lo = Math.max(Math.min(...sb), Math.min(...sc));
  if (!(hi > lo)) return curve;
  for (let k = 1; k <= levels; k++) {
    const level = hi - ((hi - lo) * k) / levels;
    const b = firstReach(xb, sb, level);
    const c = firstReach(xc, sc, level);
    if (b === null || c === null || c <= 0) continue;
    curve.loss.push(level);
    curve.baselineAt.push(b);
    curve.candidateAt.push(c);
    curve.ratio.push(b / c);
  }
  return curve;
}

/** The candidate's savings over the baseline (runs, or curves with the same columns). */
export function compareRuns(baseline: LossCurves, candidate: LossCurves, options: CompareOptions = {}): ComparisonDoc {
  const { smoothing = PAPER_SMOOTHING, axis = 'step', levels = 50 } = options;
  if (!(typeof smoothing === 'number' && smoothing > 0 && smoothing <= 1)) {
    throw new MambalabError(`compareRuns: smoothing must be an EMA weight in (0, 1] (the paper: ${PAPER_SMOOTHING}; 1 = raw losses), got ${smoothing}`);
  }
  if (axis !== 'step' && axis !== 'tokens') throw new MambalabError(`compareRuns: axis must be "step" or "tokens", got ${JSON.stringify(axis)}`);
  if (!Number.isInteger(levels) || levels < 1) throw new MambalabError(`compareRuns: levels must be a positive integer, got ${levels}`);
  const b = checked(baseline, 'baseline');
  const c = checked(candidate, 'candidate');
  const xb = b.x(axis);
  const xc = c.x(axis);
  const sb = ema(b.x('step'), b.loss, smoothing);
  const sc = ema(c.x('step'), c.loss, smoothing);
  const baselineFinalLoss = sb[sb.length - 1]!;
  const baselineAt = xb[xb.length - 1]!;
  const candidateReachesAt = firstReach(xc, sc, baselineFinalLoss);
  return {
    baseline: b.id,
    candidate: c.id,
    smoothing,
    axis,
    baselineFinalLoss,
    baselineAt,
    candidateReachesAt,
    ratio: candidateReachesAt === null || candidateReachesAt <= 0 ? null : baselineAt / candidateReachesAt,
    curve: savingsCurve(xb, sb, xc, sc, levels),
  };
}
