// A one-line progress bar for terminals: the status line the notebook shows, behind a bar.
import { progressText } from '@mambalab/contract';

export function progressLine(step: number, total: number, loss: number, tokensPerS: number, elapsedS: number): string {
  const etaS = step > 0 ? (elapsedS / step) * (total - step) : 0;
  return `${bar(step / total)} ${progressText({ step, totalSteps: total, loss, tokensPerS, etaS })}`;
}

/** A bar 24 characters wide, filled to `fraction` (0..1). */
export function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}
