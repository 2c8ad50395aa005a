// A sweep's final losses against the value of the field it varies, as the MoE-Mamba paper plots
// its number-of-experts sweep: one point per configuration, one line per series (the other
// varied fields' values), the x-axis logarithmic when the values are numbers spanning a factor
// of 8 or more (1, 4, 8, 16, 32 experts). The kernel computes every loss; this file only places
// them. Pure: the document's finalLoss in, a Plotly figure out.
import type { Layout, PlotData } from 'plotly.js';
import { formatLoss, type FinalLossDoc, type FinalLossPoint } from '@mambalab/contract';
import { escapeTemplate, type Figure } from './loss-figure.js';
import { axisStyle, baseLayout, runColor, type PlotTheme } from './theme.js';

export function finalLossFigure(finalLoss: FinalLossDoc, runNameOf: (id: string) => string, theme: PlotTheme): Figure {
  const series = new Map<string, FinalLossPoint[]>();
  for (const point of finalLoss.points) series.set(point.series ?? '', [...(series.get(point.series ?? '') ?? []), point]);
  const numbers = finalLoss.points.map((p) => p.value).filter((v): v is number => typeof v === 'number');
  const numeric = numbers.length === finalLoss.points.length && numbers.length > 0;
  const logX = numeric && Math.min(...numbers) > 0 && Math.max(...numbers) / Math.min(...numbers) >= 8;
  const data: Array<Partial<PlotData>> = [...series.entries()].map(([name, points], i) => ({
    type: 'scatter',
    mode: 'lines+markers',
    x: points.map((p) => p.value),
    y: points.map((p) => p.loss),
    name: name || finalLoss.field,
    showlegend: series.size > 1,
    line: { color: runColor(theme, i), width: 2 },
    marker: { size: 8, color: runColor(theme, i) },
    text: points.map((p) => `${escapeTemplate(runNameOf(p.runId))}<br>${escapeTemplate(finalLoss.field)} ${escapeTemplate(String(p.value))}<br>final loss ${formatLoss(p.loss)}`),
    hovertemplate: '%{text}<extra></extra>',
  }));
  const axis = axisStyle(theme);
  const values = [...new Set(finalLoss.points.map((p) => p.value))];
  const layout: Partial<Layout> = {
    ...baseLayout(theme),
    uirevision: `final|${finalLoss.field}`,
    hovermode: 'closest',
    xaxis: {
      ...axis,
      title: { text: finalLoss.field },
      type: logX ? 'log' : numeric ? 'linear' : 'category',
      // every configuration's value as a tick: a log axis would label only powers of ten
      ...(numeric ? { tickvals: values, ticktext: values.map(String) } : {}),
    },
    yaxis: { ...axis, title: { text: `final training loss (EMA α = ${finalLoss.smoothing})` } },
  };
  return { data, layout, notes: [] };
}
