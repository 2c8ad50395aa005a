// Training-step savings as the MoE-Mamba paper reports them: the baseline's final smoothed loss
// as a level, where the candidate first reaches it, the ratio ("2.2× fewer steps"), and the
// ratio over all loss levels. The kernel computes every number here (comparisons in the
// bundle); this file only places them. Pure: comparison and runs in, a Plotly figure out.
import type { Layout, PlotData } from 'plotly.js';
import { axisUnit, ema, formatLoss, formatPosition, formatSavings, type ComparisonDoc, type RunDoc } from '@mambalab/contract';
import { downsampleIndices, pick } from './downsample.js';
import { escapeTemplate, type Figure } from './loss-figure.js';
import { axisStyle, baseLayout, type PlotTheme } from './theme.js';

export function savingsFigure(
  comparison: ComparisonDoc,
  baseline: RunDoc,
  candidate: RunDoc,
  colorOf: (run: RunDoc) => string,
  theme: PlotTheme,
  buckets: number,
): Figure {
  const data: Array<Partial<PlotData>> = [];
  for (const run of [baseline, candidate]) {
    const x = run.train[comparison.axis === 'step' ? 'step' : 'tokens'];
    const y = ema(run.train.step, run.train.loss, comparison.smoothing);
    const kept = downsampleIndices(x, y, buckets);
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: pick(x, kept),
      y: pick(y, kept),
      name: run.name,
      line: { color: colorOf(run), width: 2 },
      hovertemplate: `<b>${escapeTemplate(run.name)}</b><br>${comparison.axis} %{x:,}<br>smoothed loss %{y:.4f}<extra></extra>`,
    });
  }
  const level = comparison.baselineFinalLoss;
  const reached = comparison.candidateReachesAt ?? null;
  const marks: Array<{ x: number; text: string; color: string }> = [];
  if (comparison.baselineAt !== undefined) {
    marks.push({ x: comparison.baselineAt, text: `${baseline.name} ends: ${formatPosition(comparison.axis, comparison.baselineAt)}`, color: colorOf(baseline) });
  }
  if (reached !== null) {
    marks.push({ x: reached, text: `${candidate.name} reaches it: ${formatPosition(comparison.axis, reached)}`, color: colorOf(candidate) });
  }
  data.push({
    type: 'scatter',
    mode: 'markers',
    x: marks.map((mark) => mark.x),
    y: marks.map(() => level),
    marker: { size: 11, symbol: 'diamond', color: marks.map((mark) => mark.color), line: { width: 1.5, color: theme.reference } },
    text: marks.map((mark) => mark.text),
    hovertemplate: '%{text}<extra></extra>',
    showlegend: false,
    name: 'marks',
  });
  const curve = comparison.curve;
  data.push({
    type: 'scatter',
    mode: 'lines+markers',
    x: curve.loss,
    y: curve.ratio,
    xaxis: 'x2',
    yaxis: 'y2',
    name: 'savings',
    showlegend: false,
    line: { color: colorOf(candidate), width: 2 },
    marker: { size: 4, color: colorOf(candidate) },
    customdata: curve.loss.map((_, i) => [
      formatPosition(comparison.axis, curve.baselineAt[i]!),
      formatPosition(comparison.axis, curve.candidateAt[i]!),
      formatSavings(curve.ratio[i]!, axisUnit(comparison.axis)),
    ]) as unknown as PlotData['customdata'],
    hovertemplate: `loss %{x:.4f}<br>${escapeTemplate(baseline.name)}: %{customdata[0]}<br>${escapeTemplate(candidate.name)}: %{customdata[1]}<br><b>%{customdata[2]}</b><extra></extra>`,
  });

  const axis = axisStyle(theme);
  const unit = axisUnit(comparison.axis);
  const layout: Partial<Layout> = {
    ...baseLayout(theme),
    uirevision: `savings|${comparison.baseline}|${comparison.candidate}|${comparison.axis}`,
    hovermode: 'closest',
    legend: { ...baseLayout(theme).legend, orientation: 'h', x: 0, xanchor: 'left', y: 1.02, yanchor: 'bottom' },
    xaxis: { ...axis, domain: [0, 0.58], title: { text: comparison.axis === 'step' ? 'training step' : 'tokens' }, exponentformat: 'B' },
    yaxis: { ...axis, title: { text: `training loss (EMA α = ${comparison.smoothing})` } },
    xaxis2: { ...axis, domain: [0.7, 1], anchor: 'y2', autorange: 'reversed', title: { text: 'loss level reached (training goes →)' } },
    yaxis2: { ...axis, anchor: 'x2', title: { text: `× fewer ${unit}` }, rangemode: 'tozero' },
    shapes: [
      { type: 'line', xref: 'x domain' as 'x', x0: 0, x1: 1, yref: 'y', y0: level, y1: level, line: { color: theme.reference, width: 1, dash: 'dash' } },
      { type: 'line', xref: 'x2 domain' as 'x', x0: 0, x1: 1, yref: 'y2', y0: 1, y1: 1, line: { color: theme.reference, width: 1, dash: 'dot' } },
      ...(reached === null
        ? []
        : [{ type: 'line' as const, xref: 'x' as const, x0: reached, x1: reached, yref: 'y domain' as 'y', y0: 0, y1: 1, line: { color: colorOf(candidate), width: 1, dash: 'dot' as const } }]),
      { type: 'line', xref: 'x2', x0: level, x1: level, yref: 'y2 domain' as 'y', y0: 0, y1: 1, line: { color: theme.reference, width: 1, dash: 'dash' } },
    ],
    annotations: [
      {
        // at the left, where the curves are still high, so the label stays clear of them
        xref: 'x domain' as 'x',
        x: 0.02,
        y: level,
        xanchor: 'left',
        yanchor: 'bottom',
        showarrow: false,
        text: `${escapeTemplate(baseline.name)} final loss ${formatLoss(level)}`,
        font: { size: 11, color: theme.mutedText },
      },
      ...(reached === null
        ? []
        : [
            {
              x: reached,
              y: level,
              ax: 30,
              ay: -45,
              showarrow: true,
              arrowcolor: theme.reference,
              text: `<b>${comparison.ratio === null || comparison.ratio === undefined ? formatPosition(comparison.axis, reached) : formatSavings(comparison.ratio, unit)}</b>`,
              font: { size: 14, color: theme.text },
              bgcolor: theme.dark ? 'rgba(0,0,0,0.6)' : 'rgba(255,255,255,0.8)',
            },
          ]),
    ] as Layout['annotations'],
  };
  return { data, layout, notes: [] };
}
