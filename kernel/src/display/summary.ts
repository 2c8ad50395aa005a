// The few numbers a reader wants from a display document, shared by its text and HTML forms.
// The numbers read as in the lab extension (the contract's formats and one-line summaries).
import {
  formatCount,
  formatLoss,
  runName,
  savingsHeadline,
  type ComparisonDoc,
  type DisplayDoc,
  type ModelSummary,
  type RunDoc,
} from '@mambalab/contract';

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

export function modelText(m: ModelSummary | undefined): string {
  if (!m) return '–';
  const parts = [m.family, m.pattern, m.dModel !== undefined ? `d_model ${m.dModel}` : undefined];
  if (m.paramsActive !== undefined) parts.push(`${formatCount(m.paramsActive)} params`);
  return parts.filter((p) => p !== undefined).join(' ') || '–';
}

export function runRow(run: RunDoc): RunRow {
  const t = run.train;
  const missing = Number.NaN; // formats as '–'
  return {
    name: run.name,
    status: run.status,
    model: modelText(run.model),
    steps: String(last(t.step) ?? 0),
    tokens: formatCount(last(t.tokens) ?? 0),
    loss: formatLoss(last(t.loss) ?? missing),
    evalLoss: formatLoss(last(run.validation?.loss) ?? missing),
    tokensPerS: formatCount(last(t.tokensPerS) ?? missing),
  };
}

/** "moe reaches mamba's final loss 5.1200 (EMA α = 0.001) at step 21: 1.9× fewer steps (mamba ends at step 40)." */
export function comparisonText(doc: DisplayDoc, c: ComparisonDoc): string {
  return savingsHeadline(c, { baseline: runName(doc, c.baseline), candidate: runName(doc, c.candidate) });
}

/**
 * "moe tokens per expert at step 40: layer 1 60/52/70/74 (max/mean 1.16), layer 3 …, 3 dropped",
 * or undefined without MoE layers.
 */
export function expertsText(run: RunDoc): string | undefined {
  const e = run.experts;
  const i = (e?.step.length ?? 0) - 1;
  if (!e || i < 0) return undefined;
  const balanceText = (l: number) => {
    const maxOverMean = e.balance?.maxOverMean[i]?.[l];
    return typeof maxOverMean === 'number' ? ` (max/mean ${maxOverMean.toFixed(2)})` : '';
  };
  const shown = e.layers.slice(0, 4).map((layer, l) => `layer ${layer} ${e.counts[i]![l]!.join('/')}${balanceText(l)}`);
  if (e.layers.length > 4) shown.push(`… ${e.layers.length - 4} more`);
  const dropped = (e.dropped?.[i] ?? []).reduce((a, b) => a + (b ?? 0), 0);
  return `${run.name} tokens per expert at step ${e.step[i]}: ${shown.join(', ')}${dropped > 0 ? `, ${dropped} dropped` : ''}`;
}

export function headline(doc: DisplayDoc): string {
  const n = doc.runs.length;
  return doc.title ?? `mambalab: ${n} run${n === 1 ? '' : 's'}`;
}
