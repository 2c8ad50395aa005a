// The text/plain form of a display document: what a terminal, `jupyter execute` or a
// notebook viewer without the lab extension shows.
import { finalLossText, progressLine, type DisplayDoc } from '@mambalab/contract';

import { comparisonText, expertsText, headline, runRow } from './summary.js';

export function textSummary(doc: DisplayDoc): string {
  const lines = [headline(doc)];
  for (const run of doc.runs) {
    const r = runRow(run);
    lines.push(`  ${r.name} [${r.status}] ${r.model}: step ${r.steps}, ${r.tokens} tokens, loss ${r.loss}, eval loss ${r.evalLoss}, ${r.tokensPerS} tok/s`);
  }
  for (const run of doc.runs) {
    const experts = expertsText(run);
    if (experts) lines.push(`  ${experts}`);
  }
  if (doc.finalLoss) lines.push(`  ${finalLossText(doc.finalLoss)}`);
  for (const c of doc.comparisons ?? []) lines.push(`  ${comparisonText(doc, c)}`);
  const progress = progressLine(doc);
  if (progress) lines.push(`  ${progress.text}`);
  return lines.join('\n');
}
