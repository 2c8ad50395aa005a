// Plot colours and fonts taken from JupyterLab's theme variables, so a figure follows the light
// and dark themes. Pure: the caller passes a lookup of CSS custom properties (in the browser,
// getComputedStyle(document.body)), which keeps it testable without a browser.
import type { Layout } from 'plotly.js';

export interface PlotTheme {
  dark: boolean;
  font: string;
  text: string;
  mutedText: string;
  grid: string;
  line: string;
  /** one colour per run, in order; readable on both themes' backgrounds */
  runColors: string[];
  /** the baseline's final-loss line and other reference marks */
  reference: string;
}

// Plotly's default sequence, with the two darkest replaced in the dark theme.
const LIGHT_RUN_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DARK_RUN_COLORS = ['#4e9de0', '#ff9d3f', '#46c046', '#ff5a5b', '#b692e0', '#c49c94', '#f7a1d6', '#c7c7c7', '#dbdb5a', '#35d7e8'];

export function plotTheme(cssVariable: (name: string) => string, dark: boolean): PlotTheme {
  const pick = (name: string, fallback: string): string => cssVariable(name).trim() || fallback;
  return {
    dark,
    font: pick('--jp-ui-font-family', 'system-ui, sans-serif'),
    text: pick('--jp-ui-font-color1', dark ? '#e0e0e0' : '#212121'),
    mutedText: pick('--jp-ui-font-color2', dark ? '#a0a0a0' : '#616161'),
    grid: pick('--jp-border-color2', dark ? '#424242' : '#e0e0e0'),
    line: pick('--jp-border-color1', dark ? '#616161' : '#bdbdbd'),
    runColors: dark ? DARK_RUN_COLORS : LIGHT_RUN_COLORS,
    reference: dark ? '#e0e0e0' : '#424242',
  };
}

export function runColor(theme: PlotTheme, index: number): string {
  return theme.runColors[index % theme.runColors.length]!;
}

/** The layout every figure starts from: transparent so the output area's background shows. */
export function baseLayout(theme: PlotTheme): Partial<Layout> {
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: theme.font, color: theme.text, size: 12 },
    margin: { l: 60, r: 20, t: 30, b: 50 },
    legend: { bgcolor: 'rgba(0,0,0,0)', font: { color: theme.text } },
    hoverlabel: { font: { family: theme.font } },
    autosize: true,
  };
}

/** Axis styling shared by every axis of every figure. */
export function axisStyle(theme: PlotTheme): Record<string, unknown> {
  return { gridcolor: theme.grid, linecolor: theme.line, zerolinecolor: theme.grid, color: theme.mutedText, automargin: true };
}
