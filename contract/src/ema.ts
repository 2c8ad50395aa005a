// Exponential moving average of a logged series, as the MoE-Mamba paper smooths its training
// loss (α = 0.001 per training step). The kernel measures training-step savings on this curve and
// the lab extension draws it, so a marked crossing sits on the drawn line.

/**
 * The EMA of `values` logged at training steps `steps` (ascending), with weight `alpha` on the
 * newest step, bias-corrected: at each point m = d·m + (1 − d)·x and w = d·w + (1 − d) with
 * d = (1 − α)^g, g the steps since the previous point; the smoothed value is m / w. With a point
 * per step this is the classic debiased EMA, so the curve starts at the first value rather than
 * ramping up from zero, and logging every k steps gives the same curve at the logged steps.
 * alpha ≤ 0 returns the values unchanged; non-finite values are skipped (they keep the previous
 * smoothed value, or NaN before the first finite one).
 */
export function ema(steps: ArrayLike<number>, values: ArrayLike<number>, alpha: number): number[] {
  const out = new Array<number>(values.length);
  if (!(alpha > 0)) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]!;
    return out;
  }
  const logKeep = Math.log1p(-Math.min(alpha, 1));
  let mean = 0;
  let weight = 0;
  let previousStep = 0; // training starts at step 0: the first point stands for the steps up to it
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isFinite(value)) {
      const gap = Math.max(steps[i]! - previousStep, 1);
      const keep = Math.exp(logKeep * gap);
      mean = keep * mean + (1 - keep) * value;
      weight = keep * weight + (1 - keep);
      previousStep = steps[i]!;
    }
    out[i] = weight > 0 ? mean / weight : Number.NaN;
  }
  return out;
}
