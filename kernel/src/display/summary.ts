// The few numbers a reader wants from a display document, shared by its text and HTML forms.
import type { ComparisonDoc, DisplayDoc, ModelSummary, ProgressDoc, RunDoc } from '@mambalab/contract';

import { formatDuration, formatRate } from '../cli/progress.js';

export interface RunRow {
  name: string;
  status: string;
  model: string;
  steps: string;
  tokens: string;
  loss: string;
  evalLoss: string;
  tokensPerS: string;
}

function last(xs: readonly number[] | undefined): number | undefined {
  return xs && xs.length > 0 ? xs[xs.length - 1] : undefined;
}

function fixed(x: number | undefined, digits = 3): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

export function formatCount(x: number): string {
  return x >= 1e9 ? `${(x / 1e9).toFixed(2)}B` : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : String(x);
}

export function modelText(m: ModelSummary | undefined): string {
  if (!m) return '—';
  const parts = [m.family, m.pattern, m.dModel !== undefined ? `d_model ${m.dModel}` : undefined];
  if (m.paramsActive !== undefined) parts.push(`${formatCount(m.paramsActive)} params`);
  return parts.filter((p) => p !== undefined).join(' ') || '—';
}

export function runRow(run: RunDoc): RunRow {
  const t = run.train;
  return {
    name: run.name,
    status: run.status,
    model: modelText(run.model),
    steps: String(last(t.step) ?? 0),
    tokens: formatCount(last(t.tokens) ?? 0),
    loss: fixed(last(t.loss)),
    evalLoss: fixed(last(run.validation?.loss)),
    tokensPerS: t.tokensPerS && t.tokensPerS.length > 0 ? formatRate(last(t.tokensPerS)!) : '—',
  };
}

/** "step 17/40  loss 7.412  6.3k tok/s  ETA 0:04". */
export function progressText(p: ProgressDoc): string {
  const parts = [`step ${p.step}/${p.totalSteps}`];
  if (p.loss !== undefined) parts.push(`loss ${fixed(p.loss)}`);
  if (p.tokensPerS !== undefined) parts.push(`${formatRate(p.tokensPerS)} tok/s`);
  if (p.etaS !== undefined) parts.push(`ETA ${formatDuration(p.etaS)}`);
  return (p.runId ? `${p.runId}: ` : '') + parts.join('  ');
}

/** "moe vs mamba (steps): reaches mamba's final loss 5.120 at 21 of 40 → 1.90× fewer steps". */
export function comparisonText(c: ComparisonDoc): string {
  const unit = c.axis === 'step' ? 'steps' : 'tokens';
  const where = (x: number | undefined | null) => (x === undefined || x === null ? '—' : c.axis === 'step' ? String(Math.round(x)) : formatCount(Math.round(x)));
  const head = `${c.candidate} vs ${c.baseline} (EMA ${c.smoothing}, ${unit})`;
  if (c.candidateReachesAt === null || c.candidateReachesAt === undefined) {
    return `${head}: never reaches ${c.baseline}'s final loss ${fixed(c.baselineFinalLoss)}`;
  }
  return `${head}: reaches ${c.baseline}'s final loss ${fixed(c.baselineFinalLoss)} at ${where(c.candidateReachesAt)} of ${where(c.baselineAt)} → ${fixed(c.ratio ?? undefined, 2)}× fewer ${unit}`;
}

/** "experts at step 40: layer 1 60/52/70/74, layer 3 …, 3 dropped", or undefined without MoE layers. */
export function expertsText(run: RunDoc): string | undefined {
  const e = run.experts;
  const i = (e?.step.length ?? 0) - 1;
  if (!e || i < 0) return undefined;
  const shown = e.layers.slice(0, 4).map((layer, l) => `layer ${layer} ${e.counts[i]![l]!.join('/')}`);
  if (e.layers.length > 4) shown.push(`… ${e.layers.length - 4} more`);
  const dropped = (e.dropped?.[i] ?? []).reduce((a, b) => a + (b ?? 0), 0);
  return `${run.name} tokens per expert at step ${e.step[i]}: ${shown.join(', ')}${dropped > 0 ? `, ${dropped} dropped` : ''}`;
}

export function headline(doc: DisplayDoc): string {
  const n = doc.runs.length;
  return doc.title ?? `mambalab: ${n} run${n === 1 ? '' : 's'}`;
}
