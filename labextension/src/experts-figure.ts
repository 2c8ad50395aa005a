// Per-layer expert token counts at one recorded step: a layers × experts heatmap of token
// shares, and one bar chart per layer as in the BlackMamba paper's routing figure. The heatmap
// colours shares on a log scale centred on the uniform share (1/E) with fixed limits, so that
// the same colour means the same load at every step of the slider, early skew (an expert taking
// half the tokens) and late near-balance (±20%) both stay readable, and over- and under-loaded
// experts differ in hue. Pure: routing rows in, Plotly figures out.
import type { Layout, PlotData } from 'plotly.js';
import { formatInteger, formatPercent } from '@mambalab/contract';
import type { LayerRouting } from './experts.js';
import type { Figure } from './loss-figure.js';
import { axisStyle, baseLayout, runColor, type PlotTheme } from './theme.js';

export function layerLabel(layer: number): string {
  return `layer ${layer}`;
}

/** The colour scale's reach: from 1/8 to 8 times the uniform share. */
export const LOAD_LIMIT_LOG2 = 3;

/** log2 of an expert's share relative to the uniform share 1/E, clamped to ±LOAD_LIMIT_LOG2. */
export function relativeLoad(share: number, numExperts: number): number {
  const load = Math.log2(share * numExperts);
  return Math.min(Math.max(Number.isFinite(load) ? load : -LOAD_LIMIT_LOG2, -LOAD_LIMIT_LOG2), LOAD_LIMIT_LOG2);
}

export function heatmapFigure(routing: LayerRouting[], numExperts: number, theme: PlotTheme): Figure {
  const experts = Array.from({ length: numExperts }, (_, e) => e);
  const labels = routing.map((row) => layerLabel(row.layer));
  const hover = routing.map((row) => row.shares.map((share, e) => [formatInteger(row.counts[e] ?? 0), formatPercent(share)]));
  const ticks = Array.from({ length: 2 * LOAD_LIMIT_LOG2 + 1 }, (_, i) => i - LOAD_LIMIT_LOG2);
  const heatmap: Partial<PlotData> = {
    type: 'heatmap',
    x: experts,
    y: labels,
    z: routing.map((row) => row.shares.map((share) => relativeLoad(share, numExperts))),
    zmin: -LOAD_LIMIT_LOG2,
    zmax: LOAD_LIMIT_LOG2,
    colorscale: 'RdBu', // Plotly's RdBu runs blue (low) to red (high): red is an overloaded expert
    customdata: hover as unknown as PlotData['customdata'],
    colorbar: {
      title: { text: 'share of tokens', side: 'right' },
      tickvals: ticks,
      // the ends saturate: say so
      ticktext: ticks.map((k) => `${k === LOAD_LIMIT_LOG2 ? '≥ ' : k === -LOAD_LIMIT_LOG2 ? '≤ ' : ''}${formatPercent(2 ** k / numExperts)}${k === 0 ? ' (uniform)' : ''}`),
      outlinewidth: 0,
      tickfont: { color: theme.mutedText },
    },
    hovertemplate: "%{y} · expert %{x}<br>%{customdata[0]} tokens (%{customdata[1]} of the layer's processed tokens)<extra></extra>",
  } as Partial<PlotData>;
  const axis = axisStyle(theme);
  const layout: Partial<Layout> = {
    ...baseLayout(theme),
    uirevision: 'experts-heatmap',
    margin: { l: 70, r: 10, t: 10, b: 45 },
    xaxis: { ...axis, title: { text: 'expert' }, dtick: numExperts > 16 ? 4 : 1, showgrid: false },
    yaxis: { ...axis, autorange: 'reversed', showgrid: false, type: 'category' },
  };
  return { data: [heatmap], layout, notes: [] };
}

/** Rows and columns of the small-multiples grid for `layers` charts. */
export function gridShape(layers: number, maxColumns = 4): { rows: number; columns: number } {
  const columns = Math.max(1, Math.min(maxColumns, layers));
  return { rows: Math.max(1, Math.ceil(layers / columns)), columns };
}

/**
 * One bar chart per layer, all on the same y-range so layers compare: up to the largest share at
 * this step, and at least twice the uniform share so that a balanced layer looks balanced.
 */
export function layerBarsFigure(routing: LayerRouting[], numExperts: number, theme: PlotTheme): Figure {
  const { rows, columns } = gridShape(routing.length);
  const gapX = 0.03;
  const gapY = 0.1;
  const cellW = (1 - gapX * (columns - 1)) / columns;
  const cellH = (1 - gapY * (rows - 1)) / rows;
  const axis = axisStyle(theme);
  const uniform = 1 / numExperts;
  const ymax = Math.max(2 * uniform, ...routing.flatMap((row) => row.shares)) * 1.05;
  const data: Array<Partial<PlotData>> = [];
  const layout: Partial<Layout> & Record<string, unknown> = {
    ...baseLayout(theme),
    uirevision: 'experts-bars',
    showlegend: false,
    margin: { l: 50, r: 10, t: 25, b: 30 },
    annotations: [],
    shapes: [],
  };
  routing.forEach((row, k) => {
    const r = Math.floor(k / columns);
    const c = k % columns;
    const suffix = k === 0 ? '' : String(k + 1);
    const x0 = c * (cellW + gapX);
    const y1 = 1 - r * (cellH + gapY);
    data.push({
      type: 'bar',
      x: row.shares.map((_, e) => e),
      y: row.shares,
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
      marker: { color: runColor(theme, 0) },
      name: layerLabel(row.layer),
      hovertemplate: `${layerLabel(row.layer)} · expert %{x}<br>%{y:.2%} of the layer's tokens<extra></extra>`,
    });
    layout[`xaxis${suffix}`] = { ...axis, domain: [x0, x0 + cellW], anchor: `y${suffix}`, showticklabels: r === rows - 1, showgrid: false, range: [-0.5, numExperts - 0.5] };
    layout[`yaxis${suffix}`] = { ...axis, domain: [y1 - cellH, y1], anchor: `x${suffix}`, range: [0, ymax], tickformat: '.0%', showticklabels: c === 0 };
    (layout.shapes as object[]).push({
      type: 'line',
      xref: `x${suffix}`,
      yref: `y${suffix}`,
      x0: -0.5,
      x1: numExperts - 0.5,
      y0: uniform,
      y1: uniform,
      line: { color: theme.reference, width: 1, dash: 'dot' },
    });
    (layout.annotations as object[]).push({
      text: `${layerLabel(row.layer)} · max/mean ${row.maxOverMean === null ? '–' : row.maxOverMean.toFixed(2)}`,
      xref: 'paper',
      yref: 'paper',
      x: x0 + cellW / 2,
      y: y1,
      xanchor: 'center',
      yanchor: 'bottom',
      showarrow: false,
      font: { size: 11, color: theme.mutedText },
    });
  });
  return { data, layout, notes: [] };
}

/** The balance table: one row of display strings per layer. */
export const BALANCE_COLUMNS = ['layer', 'tokens', 'max/mean', 'CV', 'dropped'];
export function balanceRows(routing: LayerRouting[]): string[][] {
  return routing.map((row) => [
    String(row.layer),
    formatInteger(row.tokens),
    row.maxOverMean === null ? '–' : row.maxOverMean.toFixed(2),
    row.cv === null ? '–' : row.cv.toFixed(2),
    row.dropped === null ? '–' : `${formatInteger(row.dropped)} (${formatPercent(row.droppedFraction ?? Number.NaN)})`,
  ]);
}
