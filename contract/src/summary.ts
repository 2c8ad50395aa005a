// The one-line summaries of a display document that both sides print: the kernel in its text and
// HTML forms (and the terminal), the lab extension above its plots.
import { axisUnit, formatCount, formatDuration, formatInteger, formatLoss, formatPercent, formatPosition, formatSavings } from './format.js';
import type { ComparisonDoc, DisplayDoc, FinalLossDoc, ProgressDoc } from './schema.js';

/**
 * "MoE-Mamba: step 12,300 / 100,000 (12%) · loss 3.6200 · 410k tokens/s · 1h 02m left", then
 * " · 2 non-finite steps skipped" and " · ⚠ loss spike at step 12,001: 4.1× its running average"
 * when there are some.
 */
export function progressText(progress: ProgressDoc, runName?: string): string {
  const parts = [`${runName ? `${runName}: ` : ''}step ${formatInteger(progress.step)} / ${formatInteger(progress.totalSteps)} (${formatPercent(progressFraction(progress), 0)})`];
  if (progress.loss !== undefined) parts.push(`loss ${formatLoss(progress.loss)}`);
  if (progress.tokensPerS !== undefined) parts.push(`${formatCount(progress.tokensPerS)} tokens/s`);
  if (progress.etaS !== undefined) parts.push(`${formatDuration(progress.etaS)} left`);
  if (progress.skippedSteps) parts.push(`${formatInteger(progress.skippedSteps)} non-finite step${progress.skippedSteps === 1 ? '' : 's'} skipped`);
  if (progress.warning) parts.push(`⚠ ${progress.warning}`);
  return parts.join(' · ');
}

/** The progress line's warning for a loss spike: "loss spike at step 1,234: 4.1× its running average". */
export function lossSpikeWarning(step: number, ratio: number): string {
  return `loss spike at step ${formatInteger(step)}: ${ratio.toFixed(1)}× its running average`;
}

/** How far training is, from 0 to 1. */
export function progressFraction(progress: ProgressDoc): number {
  return progress.totalSteps > 0 ? Math.min(Math.max(progress.step / progress.totalSteps, 0), 1) : 0;
}

/** The status line of a document that trains now, with its run's name; null when none does. */
export function progressLine(doc: DisplayDoc): { text: string; fraction: number } | null {
  const progress = doc.progress;
  if (!progress) return null;
  const run = doc.runs.find((r) => r.id === progress.runId);
  return { text: progressText(progress, run?.name), fraction: progressFraction(progress) };
}

/**
 * The comparison's result, as the MoE-Mamba paper states it: "MoE-Mamba reaches Mamba's final
 * loss 3.5144 (EMA α = 0.001) at step 46,400: 2.2× fewer steps (Mamba ends at step 100,000)."
 */
export function savingsHeadline(comparison: ComparisonDoc, names: { baseline: string; candidate: string }): string {
  const level = `${names.baseline}'s final loss ${formatLoss(comparison.baselineFinalLoss)} (EMA α = ${comparison.smoothing})`;
  if (comparison.candidateReachesAt === null || comparison.candidateReachesAt === undefined) {
    return `${names.candidate} has not reached ${level} yet.`;
  }
  const reaches = `${names.candidate} reaches ${level} at ${formatPosition(comparison.axis, comparison.candidateReachesAt)}`;
  if (comparison.ratio === null || comparison.ratio === undefined) return `${reaches}.`;
  const ends = comparison.baselineAt === undefined ? '' : ` (${names.baseline} ends at ${formatPosition(comparison.axis, comparison.baselineAt)})`;
  return `${reaches}: ${formatSavings(comparison.ratio, axisUnit(comparison.axis))}${ends}.`;
}

/**
 * A sweep's final losses in one line, in the order they ran: "final loss (EMA α = 0.001) by
 * numExperts: 1 → 3.5600 · 4 → 3.5500 · 32 → 3.4100" (a series' points with its name first).
 */
export function finalLossText(finalLoss: FinalLossDoc): string {
  const points = finalLoss.points.map((p) => `${p.series ? `${p.series}, ` : ''}${p.value} → ${formatLoss(p.loss)}`);
  return `final loss (EMA α = ${finalLoss.smoothing}) by ${finalLoss.field}: ${points.join(' · ')}`;
}
