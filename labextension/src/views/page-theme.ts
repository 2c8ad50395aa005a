// JupyterLab's current theme, read from the page: the body carries data-jp-theme-light and the
// theme's CSS variables. A MIME renderer gets no theme manager, so it watches those attributes.
import { plotTheme, type PlotTheme } from '../theme.js';

export function currentPlotTheme(): PlotTheme {
  const style = getComputedStyle(document.body);
  return plotTheme((name) => style.getPropertyValue(name), document.body.dataset['jpThemeLight'] === 'false');
}

/** Calls `changed` after JupyterLab switches theme; returns the function that stops watching. */
export function watchTheme(changed: () => void): () => void {
  const observer = new MutationObserver(() => changed());
  observer.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light'] });
  return () => observer.disconnect();
}
