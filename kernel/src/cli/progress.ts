// A one-line progress bar for terminals: the status line the notebook shows, behind a bar.
import { progressText } from '@mambalab/contract';

import type { StepMetrics } from '../train/metrics.js';

/** The bar and status line after step `m` of `total`, with the latest warning (a loss spike) if any. */
export function progressLine(m: StepMetrics, total: number, warning?: string): string {
  const etaS = m.step > 0 ? (m.elapsedS / m.step) * (total - m.step) : 0;
  return `${bar(m.step / total)} ${progressText({
    step: m.step,
    totalSteps: total,
    loss: m.loss,
    tokensPerS: m.tokensPerS,
    etaS,
    ...(m.nonfiniteSteps > 0 ? { skippedSteps: m.nonfiniteSteps } : {}),
    ...(warning ? { warning } : {}),
  })}`;
}

/** A bar 24 characters wide, filled to `fraction` (0..1). */
export function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}
