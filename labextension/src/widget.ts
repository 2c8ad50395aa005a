// The output widget for application/vnd.mambalab.v1+json, in notebooks and in the document
// viewer for *.mambalab.json files. It only renders: parseBundle says whether the data can be
// shown, the views turn it into charts. Live updates (update_display_data) call renderModel
// again on the same widget, and the views redraw in place.
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';
import { progressLine, type DisplayDoc, type PlotKind, type PlotSpec } from '@mambalab/contract';
import { parseBundle } from './validate.js';
import { element, messageBox } from './views/controls.js';
import { ExpertsView } from './views/experts-view.js';
import { FinalLossView } from './views/final-view.js';
import { LossView } from './views/loss-view.js';
import { currentPlotTheme, watchTheme } from './views/page-theme.js';
import { loadPlotly } from './views/plot-area.js';
import { SavingsView } from './views/savings-view.js';
import type { PlotView, ViewContext } from './views/view.js';

export class MambalabOutput extends Widget implements IRenderMime.IRenderer {
  private readonly header = element('div', 'mambalab-header');
  private readonly message = element('div', 'mambalab-message-slot');
  private readonly viewsNode = element('div', 'mambalab-views');
  private views: PlotView[] = [];
  private stopWatchingTheme: (() => void) | undefined;

  constructor(private readonly mimeType: string) {
    super();
    this.addClass('mambalab-output');
    this.node.append(this.header, this.message, this.viewsNode);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const parsed = parseBundle(model.data[this.mimeType]);
    if (!parsed.ok) {
      this.showMessage(parsed.title, parsed.details);
      return;
    }
    try {
      const plotly = await loadPlotly();
      this.message.replaceChildren();
      this.renderHeader(parsed.bundle);
      await this.renderViews(parsed.bundle, { plotly, theme: currentPlotTheme });
      this.stopWatchingTheme ??= watchTheme(() => void Promise.all(this.views.map((view) => view.redraw())));
    } catch (error) {
      this.showMessage('This mambalab output could not be drawn', [String((error as Error)?.message ?? error)]);
      console.error('mambalab: rendering failed', error);
    }
  }

  private showMessage(title: string, details: string[]): void {
    this.disposeViews();
    this.header.replaceChildren();
    this.message.replaceChildren(messageBox(title, details));
  }

  private renderHeader(bundle: DisplayDoc): void {
    const parts: HTMLElement[] = [];
    if (bundle.title) parts.push(element('div', 'mambalab-title', bundle.title));
    const progress = progressLine(bundle);
    if (progress) {
      const line = element('div', 'mambalab-progress');
      const bar = element('progress', 'mambalab-progress-bar');
      bar.max = 1;
      bar.value = progress.fraction;
      line.append(bar, element('span', 'mambalab-progress-text', progress.text));
      parts.push(line);
    }
    this.header.replaceChildren(...parts);
  }

  /** Keeps a view per plot while the plot list keeps its kinds, so updates redraw in place. */
  private async renderViews(bundle: DisplayDoc, context: ViewContext): Promise<void> {
    const kinds = bundle.plots.map((plot) => plot.kind);
    if (kinds.length !== this.views.length || kinds.some((kind, i) => this.views[i]?.kind !== kind)) {
      this.disposeViews();
      this.views = bundle.plots.map((plot) => createView(plot, context));
      this.viewsNode.replaceChildren(...this.views.map((view) => view.node));
    }
    await Promise.all(this.views.map((view, i) => view.update(bundle, bundle.plots[i]!)));
  }

  private disposeViews(): void {
    for (const view of this.views) view.dispose();
    this.views = [];
  }

  override dispose(): void {
    if (this.isDisposed) return;
    this.stopWatchingTheme?.();
    this.disposeViews();
    super.dispose();
  }
}

function createView(plot: PlotSpec, context: ViewContext): PlotView {
  const kind: PlotKind = plot.kind;
  switch (kind) {
    case 'loss':
      return new LossView(context, plot);
    case 'savings':
      return new SavingsView(context, plot);
    case 'experts':
      return new ExpertsView(context);
    case 'final':
      return new FinalLossView(context);
  }
}
