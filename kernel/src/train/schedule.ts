// Learning-rate schedule of the Mamba and MoE-Mamba recipes: linear warmup to the peak,
// then cosine decay to a floor at the last step.
export interface Schedule {
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** The learning rate for step (1-based). */
export function lrAt(step: number, s: Schedule): number {
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
