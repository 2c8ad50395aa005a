// sweep(): an experiment over every combination of some config values, one configuration after
// another on the same batches in the same order, with a live table of their progress in the
// notebook (beside fit's live loss curves). It returns the experiment's runs and comparisons,
// which show() and compareRuns take, and each configuration's final smoothed loss, which
// show() draws against the varied value (and <dir>/sweep.mambalab.json keeps).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { displayDocument, ema, formatCount, formatInteger, formatLoss, type FinalLossDoc } from '@mambalab/contract';

import type { TokenSource } from '../data/source.js';
import { MambalabError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import { PAPER_SMOOTHING } from '../train/compare.js';
import { experiment, type ExperimentOptions, type ExperimentResult } from '../train/experiment.js';
import type { Run } from '../train/runs.js';
import { sweepConfigs, type SweepSpec } from '../train/sweep.js';
import { TrainingInterrupted } from '../train/trainer.js';
import type { TextBundle } from './bundle.js';
import { escapeHtml } from './html.js';
import { LiveOutput } from './live.js';
import { currentCellWriter, sendBundle } from './tslab.js';

export type { SweepSpec, SweepValues } from '../train/sweep.js';

export interface SweepPoint {
  /** The configuration's run name (and directory under options.dir). */
  name: string;
  /** The varied fields' values. */
  values: Partial<ModelConfig>;
  run: Run;
  /** The last training loss, EMA-smoothed as the comparisons are (options.smoothing). */
  finalLoss: number;
}

export interface SweepResult extends ExperimentResult {
  /** One per configuration trained, in the order they ran. */
  points: SweepPoint[];
  /** The final losses against the first varied field (the others name each line), for show()'s 'final' plot. */
  finalLoss: FinalLossDoc;
}

/** The file beside the runs with the sweep's plots (loss curves, final losses, savings, experts). */
export const SWEEP_DISPLAY_FILE = 'sweep.mambalab.json';

/** The points as the 'final' plot takes them: x the first varied field, one line per value of the others. */
function finalLossDoc(points: readonly SweepPoint[], smoothing: number): FinalLossDoc {
  const [field = '', ...others] = Object.keys(points[0]?.values ?? {});
  return {
    field,
    smoothing,
    points: points.map((p) => {
      const value = p.values[field as keyof ModelConfig] as number | string;
      const series = others.map((f) => `${f}=${String(p.values[f as keyof ModelConfig])}`).join(', ');
      return { runId: p.run.id, value, loss: p.finalLoss, ...(series ? { series } : {}) };
    }),
  };
}

/** What the live table shows of one configuration. */
export interface SweepRow {
  name: string;
  values: Partial<ModelConfig>;
  status: 'waiting' | 'training' | Run['status'];
  step: number;
  totalSteps: number;
  /** Steps and losses so far, smoothed when drawn. */
  steps: number[];
  losses: number[];
  tokensPerS?: number;
}

/** The table as text and HTML: a row per configuration, its values, status, step, smoothed loss and speed. */
export function sweepTable(rows: readonly SweepRow[], smoothing: number): TextBundle {
  const fields = Object.keys(rows[0]?.values ?? {});
  const cells = rows.map((r) => {
    const loss = r.losses.length > 0 ? ema(r.steps, r.losses, smoothing).at(-1)! : undefined;
    return [
      r.name,
      ...fields.map((f) => String(r.values[f as keyof ModelConfig])),
      r.status,
      `${formatInteger(r.step)} / ${formatInteger(r.totalSteps)}`,
      loss === undefined ? '–' : formatLoss(loss),
      r.tokensPerS === undefined ? '–' : formatCount(r.tokensPerS),
    ];
  });
  const head = ['run', ...fields, 'status', 'step', `loss (EMA α = ${smoothing})`, 'tokens/s'];
  const done = rows.filter((r) => r.status === 'done').length;
  const title = `sweep over ${fields.join(', ')}: ${done} of ${rows.length} configurations done`;
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => '  ' + c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return {
    'text/plain': [title, line(head), ...cells.map(line)].join('\n'),
    'text/html': [
      `<div class="mambalab-output"><p><b>${escapeHtml(title)}</b></p><table>`,
      `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`,
      `<tbody>${cells.map((c) => `<tr>${c.map((x) => `<td>${escapeHtml(x)}</td>`).join('')}</tr>`).join('')}</tbody>`,
      '</table></div>',
    ].join(''),
  };
}

/**
 * Trains every configuration of `spec` for options.steps steps on `data`, one after another,
 * as experiment() does (same trainer settings, same batch order; the first is the baseline
 * unless options.baseline names another), under options.dir/<configuration name>.
 */
export async function sweep(spec: SweepSpec, data: TokenSource, options: ExperimentOptions): Promise<SweepResult> {
  const configs = sweepConfigs(spec);
  if (!options || typeof options !== 'object') throw new MambalabError('sweep: expected options such as { steps: 200, dir: "runs/sweep" }');
  const smoothing = options.smoothing ?? PAPER_SMOOTHING;
  const rows: SweepRow[] = configs.map(({ arm, values }) => ({ name: arm.name, values, status: 'waiting', step: 0, totalSteps: options.steps, steps: [], losses: [] }));
  const writer = currentCellWriter();
  let table: LiveOutput<TextBundle> | undefined;
  if (writer) {
    table = new LiveOutput<TextBundle>((bundle, update) => sendBundle(writer, bundle, { displayId: table!.displayId, update }), () => sweepTable(rows, smoothing));
    table.flush();
  }
  let result: ExperimentResult;
  try {
    result = await experiment(configs.map((c) => c.arm), data, {
      ...options,
      onStep: (name, m) => {
        const row = rows.find((r) => r.name === name)!;
        row.status = 'training';
        row.step = m.step;
        row.steps.push(m.step);
        row.losses.push(m.loss);
        row.tokensPerS = m.tokensPerS;
        table?.changed();
        options.onStep?.(name, m);
      },
    });
    for (const run of result.runs) rows.find((r) => r.name === run.name)!.status = run.status;
  } catch (error) {
    // An interrupt or a failure rejects: the row that was training says which.
    for (const row of rows) if (row.status === 'training') row.status = error instanceof TrainingInterrupted ? 'stopped' : 'failed';
    throw error;
  } finally {
    table?.flush();
  }
  const points = result.runs.map((run) => {
    const config = configs.find((c) => c.arm.name === run.name)!;
    return { name: run.name, values: config.values, run, finalLoss: ema(run.train.step, run.train.loss, smoothing).at(-1)! };
  });
  const finalLoss = finalLossDoc(points, smoothing);
  const doc = displayDocument({ runs: result.runs.map((r) => r.toDoc()), comparisons: result.comparisons, finalLoss, title: `sweep over ${Object.keys(spec.vary).join(', ')}` });
  writeFileSync(join(result.dir, SWEEP_DISPLAY_FILE), JSON.stringify(doc, null, 1) + '\n');
  return { ...result, points, finalLoss };
}
