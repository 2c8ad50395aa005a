// Exponential moving average for display, as the MoE-Mamba paper smooths its training loss
// (α = 0.001 per training step). Runs log every k steps, so the decay between two logged
// points is (1 − α)^(Δstep): the curve then means the same whatever the logging interval.
// Debiased (divided by the weight accumulated so far) so that the first points show the loss,
// not a ramp up from zero.

/**
 * Smoothed values of `values` logged at training steps `step` (ascending), with EMA weight
 * `alpha` per training step. alpha = 0 returns the values unchanged; non-finite values are
 * skipped (they keep the previous smoothed value, or NaN before the first finite one).
 */
export function emaPerStep(step: ArrayLike<number>, values: ArrayLike<number>, alpha: number): number[] {
  const out = new Array<number>(values.length);
  if (!(alpha > 0)) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]!;
    return out;
  }
  const keep = Math.log1p(-Math.min(alpha, 1));
  let mean = 0;
  let weight = 0;
  let previousStep = 0; // training starts at step 0: the first point stands for the steps up to it
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isFinite(value)) {
      const gap = Math.max(step[i]! - previousStep, 1);
      const decay = Math.exp(keep * gap);
      mean = decay * mean + (1 - decay) * value;
      weight = decay * weight + (1 - decay);
      previousStep = step[i]!;
    }
    out[i] = weight > 0 ? mean / weight : Number.NaN;
  }
  return out;
}
