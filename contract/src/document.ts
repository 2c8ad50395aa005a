// Builds the display document for runs and comparisons, choosing the plots a reader expects:
// the loss curves always, a sweep's final losses, one savings curve per comparison, the tokens
// per expert of each run that has them. Every writer of a document uses it: the kernel's run
// and experiment files (*.mambalab.json, which the extension opens) as much as its notebook
// outputs.
import { expertBalance } from './balance.js';
import { SCHEMA_VERSION, type ComparisonDoc, type DisplayDoc, type FinalLossDoc, type PlotSpec, type ProgressDoc, type RunDoc } from './schema.js';

export interface DocumentParts {
  runs: RunDoc[];
  comparisons?: ComparisonDoc[];
  finalLoss?: FinalLossDoc;
  title?: string;
  progress?: ProgressDoc;
}

/** The document of these parts, each run's expert counts with their balance (computed here, for the extension to draw). */
export function displayDocument(parts: DocumentParts): DisplayDoc {
  const { comparisons = [], finalLoss, title, progress } = parts;
  const runs = parts.runs.map(withExpertBalance);
  const hasValidation = runs.some((r) => (r.validation?.step.length ?? 0) > 0);
  const plots: PlotSpec[] = [{ kind: 'loss', x: 'step', ...(hasValidation ? { showValidation: true } : {}) }];
  if (finalLoss && finalLoss.points.length > 0) plots.push({ kind: 'final', title: `final loss by ${finalLoss.field}` });
  comparisons.forEach((c, i) => plots.push({ kind: 'savings', comparison: i, title: `${c.candidate} vs ${c.baseline}` }));
  for (const r of runs) if ((r.experts?.step.length ?? 0) > 0) plots.push({ kind: 'experts', runs: [r.id], title: `${r.name}: tokens per expert` });
  return {
    version: SCHEMA_VERSION,
    ...(title !== undefined ? { title } : {}),
    runs,
    ...(comparisons.length > 0 ? { comparisons } : {}),
    ...(finalLoss ? { finalLoss } : {}),
    plots,
    ...(progress ? { progress } : {}),
  };
}

function withExpertBalance(run: RunDoc): RunDoc {
  return run.experts ? { ...run, experts: { ...run.experts, balance: expertBalance(run.experts) } } : run;
}
