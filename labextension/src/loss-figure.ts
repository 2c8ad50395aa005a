// Loss curves: several runs overlaid, training (EMA-smoothed over the faint raw curve) and
// validation (with its perplexity in the hover), the steps skipped for a non-finite loss or
// gradient norm as marks, on the x-axis the user picks. Pure: runs and view state in, a Plotly
// figure out.
import type { Layout, PlotData } from 'plotly.js';
import { ema, formatCount, formatDuration, formatInteger, formatLoss, type RunDoc, type ValidationSeries, type XAxisKey } from '@mambalab/contract';
import { downsampleIndices, pick, type XRange } from './downsample.js';
import { axisStyle, baseLayout, type PlotTheme } from './theme.js';

export interface LossViewState {
  x: XAxisKey;
  logX: boolean;
  logY: boolean;
  /** EMA alpha per training step; 0 draws the raw values */
  smoothing: number;
  showValidation: boolean;
  /** fit the y-axis to the bulk of the curves (the first steps' loss, ~10.8 nats, squashes the rest) */
  ignoreOutliers: boolean;
}

export interface FigureOptions {
  /** how many x-buckets a trace is reduced to (see downsample.ts) */
  buckets: number;
  /** the zoomed x-range, in data units, to spend the buckets on */
  xRange?: XRange;
  /** the y-range the user zoomed to, in axis units (log10 on a log axis): kept as it is */
  yRange?: [number, number];
}

export interface Figure {
  data: Array<Partial<PlotData>>;
  layout: Partial<Layout>;
  /** things the user should know that the figure cannot say (a run left out, and why) */
  notes: string[];
}

export const X_AXIS_LABELS: Record<XAxisKey, string> = {
  step: 'training step',
  tokens: 'tokens',
  wallS: 'wall time (s)',
  flops: 'training FLOPs',
};

/** The x values of a run's series on `key`, or why there are none. */
export function xValues(run: RunDoc, columns: ValidationSeries, key: XAxisKey): number[] | string {
  if (key !== 'flops') return columns[key];
  if (run.flopsPerToken === undefined) return `${run.name}: no FLOPs per token recorded, so it cannot be drawn against FLOPs`;
  const perToken = run.flopsPerToken;
  return columns.tokens.map((tokens) => tokens * perToken);
}

export function lossFigure(runs: RunDoc[], state: LossViewState, colorOf: (run: RunDoc) => string, theme: PlotTheme, options: FigureOptions): Figure {
  const data: Array<Partial<PlotData>> = [];
  const notes: string[] = [];
  runs.forEach((run) => {
    const color = colorOf(run);
    if (run.train.step.length === 0) notes.push(`${run.name}: no steps logged yet`);
    const x = xValues(run, run.train, state.x);
    if (typeof x === 'string') {
      notes.push(x);
      return;
    }
    const smoothed = state.smoothing > 0;
    const y = smoothed ? ema(run.train.step, run.train.loss, state.smoothing) : run.train.loss;
    if (smoothed) {
      const raw = downsampleIndices(x, run.train.loss, options.buckets, options.xRange);
      data.push({
        type: 'scatter',
        mode: 'lines',
        x: pick(x, raw),
        y: pick(run.train.loss, raw),
        line: { color, width: 1 },
        opacity: 0.25,
        hoverinfo: 'skip',
        showlegend: false,
        legendgroup: run.id,
        name: `${run.name} (raw)`,
      });
    }
    const kept = downsampleIndices(x, y, options.buckets, options.xRange);
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: pick(x, kept),
      y: pick(y, kept),
      line: { color, width: 2 },
      name: run.name,
      legendgroup: run.id,
      customdata: kept.map((i) => hoverColumns(run.train, i)) as unknown as PlotData['customdata'],
      hovertemplate: `<b>${escapeTemplate(run.name)}</b><br>step %{customdata[0]} · %{customdata[1]} tokens · %{customdata[2]}<br>${
        smoothed ? 'smoothed loss %{y:.4f} (raw %{customdata[3]})' : 'loss %{customdata[3]}'
      }<extra></extra>`,
    });
    const skipped = skippedMarks(run, x);
    if (skipped) data.push({ ...skipped, marker: { color, symbol: 'x', size: 9 }, legendgroup: run.id });
    if (state.showValidation && run.validation && run.validation.step.length > 0) {
      const vx = xValues(run, run.validation, state.x);
      if (typeof vx === 'string') return;
      const validation = run.validation;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        x: vx,
        y: validation.loss,
        line: { color, width: 1.5, dash: 'dash' },
        marker: { color, size: 5 },
        name: `${run.name} (validation)`,
        legendgroup: run.id,
        customdata: validation.loss.map((loss, i) => [...hoverColumns(validation, i), formatPerplexity(loss)]) as unknown as PlotData['customdata'],
        hovertemplate: `<b>${escapeTemplate(run.name)}</b> validation<br>step %{customdata[0]} · %{customdata[1]} tokens · %{customdata[2]}<br>loss %{customdata[3]} · perplexity %{customdata[4]}<extra></extra>`,
      });
    }
  });
  const yRange = options.yRange ?? (state.ignoreOutliers ? robustRange(data.filter((trace) => trace.hoverinfo !== 'skip').flatMap((trace) => trace.y as number[]), state.logY) : undefined);
  const axis = axisStyle(theme);
  const layout: Partial<Layout> = {
    ...baseLayout(theme),
    // Zoom and legend clicks survive live updates; a new axis or scale resets the zoom.
    uirevision: `${state.x}|${state.logX}|${state.logY}`,
    hovermode: 'closest',
    showlegend: true,
    legend: { ...baseLayout(theme).legend, orientation: 'h', y: 1.02, yanchor: 'bottom', x: 0, xanchor: 'left' },
    xaxis: {
      ...axis,
      title: { text: X_AXIS_LABELS[state.x] },
      type: state.logX ? 'log' : 'linear',
      exponentformat: state.x === 'flops' ? 'power' : 'B',
    },
    yaxis: {
      ...axis,
      title: { text: state.smoothing > 0 ? `training loss (EMA α = ${state.smoothing})` : 'training loss' },
      type: state.logY ? 'log' : 'linear',
      ...(yRange ? { range: yRange, autorange: false } : { autorange: true }),
    },
  };
  return { data, layout, notes };
}

/**
 * A mark at each skipped step (live documents thin steps into buckets: a bucket with any), drawn
 * at the last finite loss before it, since the skipped step's own loss is not a number.
 */
function skippedMarks(run: RunDoc, x: number[]): Partial<PlotData> | undefined {
  const flags = run.train.skipped;
  if (!flags || !flags.some((f) => f > 0)) return undefined;
  const at: number[] = [];
  const y: number[] = [];
  let lastFinite = Number.NaN;
  run.train.loss.forEach((loss, i) => {
    if (flags[i]! > 0) {
      at.push(x[i]!);
      y.push(lastFinite);
    } else if (Number.isFinite(loss)) {
      lastFinite = loss;
    }
  });
  return {
    type: 'scatter',
    mode: 'markers',
    x: at,
    y,
    name: `${run.name} (skipped: non-finite)`,
    hovertemplate: `<b>${escapeTemplate(run.name)}</b><br>skipped at %{x}: its loss or gradient norm was not finite, nothing was applied<extra></extra>`,
  };
}

/** exp(loss), three significant digits: 31.7, 4.12k. */
function formatPerplexity(loss: number): string {
  return formatCount(Math.exp(loss));
}

function hoverColumns(columns: ValidationSeries, i: number): string[] {
  return [formatInteger(columns.step[i]!), formatCount(columns.tokens[i]!), formatDuration(columns.wallS[i]!), formatLoss(columns.loss[i]!)];
}

/** Run names go into hover templates, where %{…} would be read as a placeholder. */
export function escapeTemplate(text: string): string {
  return text.replace(/%\{/g, '%\u200b{').replace(/</g, '&lt;');
}

/**
 * The y-range that shows the bulk of `values` (in axis units: log10 on a log axis): from the
 * lowest value to a little above the 95th percentile, so the first steps' high loss does not
 * flatten the part where runs differ. Undefined (autorange) when there is nothing to fit.
 */
export function robustRange(values: readonly number[], log: boolean): [number, number] | undefined {
  const usable = values.filter((v) => Number.isFinite(v) && (!log || v > 0)).map((v) => (log ? Math.log10(v) : v));
  if (usable.length < 2) return undefined;
  usable.sort((a, b) => a - b);
  const lowest = usable[0]!;
  const highest = usable[usable.length - 1]!;
  const p95 = usable[Math.floor(0.95 * (usable.length - 1))]!;
  const top = Math.min(highest, p95 + 0.25 * (p95 - lowest));
  const pad = 0.05 * (top - lowest);
  return pad > 0 ? [lowest - pad, top + pad] : undefined;
}

/**
 * The range a Plotly relayout event sets on `axis`, in axis units (a log axis reports log10),
 * `null` when the user reset the zoom, `undefined` when the event says nothing about that axis.
 */
export function rangeFromRelayout(event: Record<string, unknown>, axis: 'xaxis' | 'yaxis'): [number, number] | null | undefined {
  if (event[`${axis}.autorange`] === true) return null;
  const pair = event[`${axis}.range`];
  const lo = Array.isArray(pair) ? pair[0] : event[`${axis}.range[0]`];
  const hi = Array.isArray(pair) ? pair[1] : event[`${axis}.range[1]`];
  if (typeof lo !== 'number' || typeof hi !== 'number') return undefined;
  return [Math.min(lo, hi), Math.max(lo, hi)];
}

/** An x-range in axis units as data units, for the downsampler. */
export function dataRange(range: [number, number], log: boolean): XRange {
  return log ? { min: 10 ** range[0], max: 10 ** range[1] } : { min: range[0], max: range[1] };
}
