// show(x): a run, runs, an experiment (a sweep with its final losses) or a comparison as one
// output. In a notebook it sends the full bundle (plots through the lab extension, a table
// elsewhere); outside, it prints the text summary.
import { displayDocument, type ComparisonDoc, type DisplayDoc } from '@mambalab/contract';

import { MambalabError } from '../errors.js';
import type { ExperimentResult } from '../train/experiment.js';
import { Run } from '../train/runs.js';
import { toBundle } from './bundle.js';
import type { SweepResult } from './sweep.js';
import { textSummary } from './text.js';
import { currentCellWriter, sendBundle } from './tslab.js';

export type Showable = Run | readonly Run[] | ExperimentResult | ComparisonDoc | DisplayDoc;

function isDisplayDoc(x: object): x is DisplayDoc {
  return 'version' in x && 'plots' in x;
}

function isComparison(x: object): x is ComparisonDoc {
  return 'baseline' in x && 'candidate' in x && 'curve' in x;
}

function isExperiment(x: object): x is ExperimentResult {
  return 'runs' in x && 'comparisons' in x && Array.isArray((x as ExperimentResult).runs);
}

/** The display document of anything show() takes. */
export function toDisplayDoc(x: Showable, options: { title?: string } = {}): DisplayDoc {
  const { title } = options;
  if (x instanceof Run) return displayDocument({ runs: [x.toDoc()], title: title ?? x.name });
  if (Array.isArray(x)) {
    const runs = x as readonly unknown[];
    const bad = runs.findIndex((r) => !(r instanceof Run));
    if (bad >= 0) throw new MambalabError(`show: item ${bad} of the array is not a Run (use trainRun or loadRun to get one)`);
    return displayDocument({ runs: (runs as Run[]).map((r) => r.toDoc()), title });
  }
  if (x && typeof x === 'object') {
    if (isDisplayDoc(x)) return title === undefined ? x : { ...x, title };
    if (isExperiment(x)) {
      const finalLoss = 'finalLoss' in x ? (x as SweepResult).finalLoss : undefined;
      return displayDocument({ runs: x.runs.map((r) => r.toDoc()), comparisons: x.comparisons, ...(finalLoss ? { finalLoss } : {}), title });
    }
    if (isComparison(x)) return displayDocument({ runs: [], comparisons: [x], title });
  }
  throw new MambalabError('show: expected a Run, an array of runs, an experiment result, a comparison or a display document');
}

/** Shows x as one output of the running cell (or prints its summary outside a notebook). */
export function show(x: Showable, options: { title?: string } = {}): void {
  const doc = toDisplayDoc(x, options);
  const writer = currentCellWriter();
  if (writer) sendBundle(writer, toBundle(doc));
  else process.stdout.write(textSummary(doc) + '\n');
}
