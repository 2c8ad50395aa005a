// Fuzzing the lab extension's reading of mambalab MIME documents: what arrives (an object from a
// notebook output, text from a .mambalab.json file) is refused with a message a person can act
// on, or parsed and drawn, never an exception out of parseBundle or the figures. Starts from
// the contract's example documents and the quick-start notebook's committed outputs.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { axisUnit, formatInteger, formatSavings, MAMBALAB_MIME, progressLine, runsOfPlot, savingsHeadline, type DisplayDoc, type PlotSpec } from '@mambalab/contract';

import { balanceRows, heatmapFigure, layerBarsFigure } from '../../labextension/src/experts-figure.js';
import { routingAt } from '../../labextension/src/experts.js';
import { lossFigure } from '../../labextension/src/loss-figure.js';
import { savingsFigure } from '../../labextension/src/savings-figure.js';
import { plotTheme } from '../../labextension/src/theme.js';
import { parseBundle, type ParseResult } from '../../labextension/src/validate.js';
import { colorLookup } from '../../labextension/src/views/view.js';
import { repoRoot } from '../helpers.js';
import { fuzzTargets, type CaseResult, type FuzzTarget } from '../support/fuzz.js';
import { mutateBytes, mutateJson, pick } from '../support/mutate.js';

const theme = plotTheme(() => '', false);

/** The example documents, and every mambalab output the committed notebooks hold. */
function documents(): unknown[] {
  const examples = join(repoRoot, 'contract', 'schema', 'examples');
  const notebooks = join(repoRoot, 'notebooks');
  const outputs = readdirSync(notebooks)
    .filter((name) => name.endsWith('.ipynb'))
    .flatMap((name) => (JSON.parse(readFileSync(join(notebooks, name), 'utf8')) as { cells: { outputs?: { data?: Record<string, unknown> }[] }[] }).cells)
    .flatMap((cell) => cell.outputs ?? [])
    .flatMap((output) => (output.data?.[MAMBALAB_MIME] ? [output.data[MAMBALAB_MIME]] : []));
  const files = readdirSync(examples).filter((name) => name.endsWith('.json'));
  return [...files.map((name) => JSON.parse(readFileSync(join(examples, name), 'utf8')) as unknown), ...outputs];
}

/** What the views compute from a parsed bundle (widget.ts and views/), short of handing it to Plotly. */
function drawAll(bundle: DisplayDoc): void {
  progressLine(bundle);
  const colorOf = colorLookup(bundle, theme);
  for (const plot of bundle.plots) drawPlot(bundle, plot, colorOf);
}

function drawPlot(bundle: DisplayDoc, plot: PlotSpec, colorOf: ReturnType<typeof colorLookup>): void {
  if (plot.kind === 'loss') {
    const state = { x: plot.x ?? 'step', logX: false, logY: plot.logY ?? false, smoothing: plot.smoothing ?? 0, showValidation: plot.showValidation ?? true, ignoreOutliers: true };
    lossFigure(runsOfPlot(bundle, plot), state, colorOf, theme, { buckets: 500 });
    lossFigure(runsOfPlot(bundle, plot), { ...state, x: 'flops', logX: true, logY: true }, colorOf, theme, { buckets: 500 });
  } else if (plot.kind === 'savings') {
    const comparisons = bundle.comparisons ?? [];
    comparisons.forEach((comparison) => {
      const baseline = bundle.runs.find((run) => run.id === comparison.baseline);
      const candidate = bundle.runs.find((run) => run.id === comparison.candidate);
      if (!baseline || !candidate) return;
      savingsHeadline(comparison, { baseline: baseline.name, candidate: candidate.name });
      if (comparison.ratio != null) formatSavings(comparison.ratio, axisUnit(comparison.axis));
      savingsFigure(comparison, baseline, candidate, colorOf, theme, 1500);
    });
  } else {
    for (const run of runsOfPlot(bundle, plot)) {
      const experts = run.experts;
      if (!experts) continue;
      experts.step.forEach((step, i) => {
        formatInteger(step);
        const routing = routingAt(experts, i);
        balanceRows(routing);
        heatmapFigure(routing, experts.numExperts, theme);
        layerBarsFigure(routing, experts.numExperts, theme);
      });
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A refusal must say what is wrong in a few lines of text. */
function refusalProblem(result: Extract<ParseResult, { ok: false }>): string | undefined {
  if (typeof result.title !== 'string' || result.title === '') return `a refusal without a title: ${JSON.stringify(result)}`;
  if (!Array.isArray(result.details) || result.details.length > 9) return `${result.details.length} detail lines`;
  const odd = result.details.find((line) => typeof line !== 'string' || line.length > 500);
  return odd === undefined ? undefined : `a detail line of ${String(odd).length} characters`;
}

const bundles: FuzzTarget = {
  name: 'parseBundle',
  cases: 1200,
  setup() {
    const originals = documents().map((document) => ({ document, text: JSON.stringify(document, null, 1) }));
    return (rand): CaseResult => {
      const { document, text: original } = pick(rand, originals);
      // As a file arrives (text), or as a notebook output does (an object; text when the damage broke the JSON).
      const asText = rand.next() < 0.4;
      const mutation = asText ? mutateBytes(rand, Buffer.from(original)) : mutateJson(rand, document, original);
      const text = mutation.value.toString('utf8');
      let data: unknown = text;
      if (!asText) {
        try {
          data = JSON.parse(text);
        } catch {
          // stays text
        }
      }
      const what = `${asText ? 'file' : 'output'}: ${mutation.what}`;
      const before = JSON.stringify(data);
      let result: ParseResult;
      try {
        result = parseBundle(data);
      } catch (error) {
        return { what, outcome: 'refused', problem: `parseBundle threw ${describe(error)}` };
      }
      if (JSON.stringify(data) !== before) return { what, outcome: result.ok ? 'read' : 'refused', problem: 'parseBundle changed the data it was given' };
      if (!result.ok) {
        const problem = refusalProblem(result);
        return { what, outcome: 'refused', ...(problem ? { problem } : {}) };
      }
      try {
        drawAll(result.bundle);
      } catch (error) {
        return { what, outcome: 'read', problem: `drawing the parsed bundle threw ${describe(error)}` };
      }
      return { what, outcome: 'read' };
    };
  },
};

fuzzTargets(import.meta.filename, [bundles]);
