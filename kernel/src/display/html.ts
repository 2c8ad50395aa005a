// The text/html form of a display document: a static table for frontends without the lab
// extension (classic notebook, GitHub, nbviewer). No scripts, no styles beyond the table.
import { finalLossText, progressLine, type DisplayDoc } from '@mambalab/contract';

import { comparisonText, expertsText, headline, runRow, type RunRow } from './summary.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const COLUMNS: [keyof RunRow, string][] = [
  ['name', 'run'],
  ['status', 'status'],
  ['model', 'model'],
  ['steps', 'steps'],
  ['tokens', 'tokens'],
  ['loss', 'loss'],
  ['evalLoss', 'eval loss'],
  ['tokensPerS', 'tokens/s'],
];

export function htmlTable(doc: DisplayDoc): string {
  const head = COLUMNS.map(([, title]) => `<th>${title}</th>`).join('');
  const rows = doc.runs.map((run) => {
    const r = runRow(run);
    return `<tr>${COLUMNS.map(([key]) => `<td>${escapeHtml(r[key])}</td>`).join('')}</tr>`;
  });
  const parts = [
    `<div class="mambalab-output">`,
    `<p><b>${escapeHtml(headline(doc))}</b></p>`,
    `<table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`,
  ];
  const experts = doc.runs.map(expertsText).filter((t) => t !== undefined);
  if (experts.length > 0) parts.push(`<ul>${experts.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ul>`);
  if (doc.finalLoss) parts.push(`<p>${escapeHtml(finalLossText(doc.finalLoss))}</p>`);
  const comparisons = doc.comparisons ?? [];
  if (comparisons.length > 0) parts.push(`<ul>${comparisons.map((c) => `<li>${escapeHtml(comparisonText(doc, c))}</li>`).join('')}</ul>`);
  const progress = progressLine(doc);
  if (progress) parts.push(`<p><code>${escapeHtml(progress.text)}</code></p>`);
  parts.push('</div>');
  return parts.join('');
}
