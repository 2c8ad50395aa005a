// Draws every fit() of a notebook cell into one output that updates in place (all the cell's
// runs, and a progress line for the one training now), and stops fits on interrupt.
import { displayDocument, lossSpikeWarning, POSITION_COLUMNS, type ProgressDoc, type RunDoc } from '@mambalab/contract';

import { trainingFlopsPerToken } from '../models/flops.js';
import { MetricsLog, trainSeries } from '../train/metrics.js';
import { modelSummary } from '../train/runs.js';
import { TrainingInterrupted, type FitOptions, type FitWatch, type FitWatcher, type Trainer } from '../train/trainer.js';
import { toBundle } from './bundle.js';
import { LiveOutput, thinColumns, type BundleSink } from './live.js';
import { sendBundle, type CellWriter } from './tslab.js';

/** Live redraws carry at most this many points per series; run files keep every step. */
export const LIVE_MAX_POINTS = 2000;
/** Expert counts are drawn at about this many steps of a fit. */
const LIVE_EXPERT_POINTS = 200;

/** A fit drawn live: what the document says of its run, and the metrics logged so far. */
interface LiveRun {
  info: Omit<RunDoc, 'train' | 'validation' | 'experts'>;
  log: MetricsLog;
}

interface Cell {
  writer: CellWriter;
  output: LiveOutput;
  runs: LiveRun[];
  progress?: ProgressDoc;
  /** Once interrupted, a cell trains no more (code that catches the interrupt cannot go on training). */
  interrupted: boolean;
}

export interface FitWatcherOptions {
  /** The writer of the cell running now; fits outside a cell are not drawn. */
  writer: () => CellWriter | undefined;
  minIntervalMs?: number;
  now?: () => number;
}

export class LiveFitWatcher implements FitWatcher {
  private cell: Cell | undefined;
  private readonly running = new Set<AbortController>();

  constructor(private readonly options: FitWatcherOptions) {}

  /** Stops every running fit at its next step boundary; false when none was left to stop. */
  interrupt(): boolean {
    const live = [...this.running].filter((c) => !c.signal.aborted);
    for (const c of live) c.abort();
    return live.length > 0;
  }

  start(trainer: Trainer, fit: FitOptions): FitWatch | undefined {
    const writer = this.options.writer();
    if (!writer) return undefined;
    const cell = this.cellOf(writer);
    if (cell.interrupted) return { signal: AbortSignal.abort(), step() {}, end() {} };

    const name = fit.name ?? `run ${cell.runs.length + 1}`;
    const run: LiveRun = {
      info: {
        id: this.uniqueId(cell, name),
        name,
        status: 'running',
        model: modelSummary(trainer.model),
        flopsPerToken: trainingFlopsPerToken(trainer.model.config, trainer.options.seqLen),
      },
      log: new MetricsLog(name, trainer.model.config),
    };
    cell.runs.push(run);
    const startMs = this.now();
    const fromStep = trainer.stepCount;
    // This fit's own throughput (its steps only, not the evaluations between them).
    const stepTokens = trainer.options.batchSize * trainer.options.seqLen;
    let tokens = 0;
    let seconds = 0;
    // The latest loss spike stays on the status line: one step's warning would flash by unseen.
    let warning: string | undefined;
    const expertsEvery = Math.max(1, Math.ceil(fit.steps / LIVE_EXPERT_POINTS));
    const controller = new AbortController();
    this.running.add(controller);
    cell.progress = { runId: run.info.id, step: 0, totalSteps: fit.steps };
    cell.output.changed();

    return {
      signal: controller.signal,
      step: (m) => {
        const done = m.step - fromStep;
        run.log.append(m, { experts: done % expertsEvery === 0 || done === fit.steps });
        tokens += stepTokens;
        seconds += stepTokens / m.tokensPerS;
        const wallS = (this.now() - startMs) / 1000;
        if (m.lossSpike !== undefined) warning = lossSpikeWarning(m.step, m.lossSpike);
        cell.progress = {
          runId: run.info.id,
          step: done,
          totalSteps: fit.steps,
          loss: m.loss,
          tokensPerS: tokens / seconds,
          etaS: (wallS / done) * (fit.steps - done),
          ...(m.nonfiniteSteps > 0 ? { skippedSteps: m.nonfiniteSteps } : {}),
          ...(warning ? { warning } : {}),
        };
        cell.output.changed();
      },
      end: (outcome) => {
        this.running.delete(controller);
        const interrupted = 'error' in outcome && outcome.error instanceof TrainingInterrupted ? outcome.error : undefined;
        const result = 'result' in outcome ? outcome.result : interrupted?.result;
        run.info.status = !result ? 'failed' : result.stopped ? 'stopped' : 'done';
        cell.progress = undefined;
        cell.output.flush();
        if (interrupted) cell.interrupted = true;
      },
    };
  }

  private now(): number {
    return (this.options.now ?? (() => performance.now()))();
  }

  private cellOf(writer: CellWriter): Cell {
    if (this.cell?.writer === writer) return this.cell;
    let output: LiveOutput | undefined;
    const sink: BundleSink = (bundle, update) => sendBundle(writer, bundle, { displayId: output!.displayId, update });
    output = new LiveOutput(sink, () => toBundle(render(cell)), this.options.minIntervalMs ?? 250, () => this.now());
    const cell: Cell = { writer, output, runs: [], interrupted: false };
    this.cell = cell;
    return cell;
  }

  private uniqueId(cell: Cell, name: string): string {
    let id = name;
    for (let k = 2; cell.runs.some((r) => r.info.id === id); k++) id = `${name} #${k}`;
    return id;
  }
}

function render(cell: Cell) {
  const runs = cell.runs.map(({ info, log }): RunDoc => ({
    ...info,
    train: trainSeries(thinColumns(log.train, LIVE_MAX_POINTS, POSITION_COLUMNS)),
    ...(log.validation.step.length > 0 ? { validation: thinColumns(log.validation, LIVE_MAX_POINTS, POSITION_COLUMNS) } : {}),
    ...(log.experts && log.experts.step.length > 0 ? { experts: log.experts } : {}),
  }));
  return displayDocument({ runs, ...(cell.progress ? { progress: cell.progress } : {}) });
}
