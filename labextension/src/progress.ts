// The status line shown above the plots while a run trains.
import type { DisplayDoc } from '@mambalab/contract';
import { formatCount, formatDuration, formatInteger, formatLoss, formatPercent } from './format.js';

export function progressLine(bundle: DisplayDoc): { text: string; fraction: number } | null {
  const progress = bundle.progress;
  if (!progress) return null;
  const run = bundle.runs.find((r) => r.id === progress.runId);
  const parts = [
    `${run ? `${run.name}: ` : ''}step ${formatInteger(progress.step)} / ${formatInteger(progress.totalSteps)}`,
  ];
  const fraction = progress.totalSteps > 0 ? Math.min(Math.max(progress.step / progress.totalSteps, 0), 1) : 0;
  parts[0] += ` (${formatPercent(fraction, 0)})`;
  if (progress.loss !== undefined) parts.push(`loss ${formatLoss(progress.loss)}`);
  if (progress.tokensPerS !== undefined) parts.push(`${formatCount(progress.tokensPerS)} tokens/s`);
  if (progress.etaS !== undefined) parts.push(`${formatDuration(progress.etaS)} left`);
  return { text: parts.join(' · '), fraction };
}
