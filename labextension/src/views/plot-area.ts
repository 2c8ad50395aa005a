/// <reference path="../plotly-dist-min.d.ts" />
// One Plotly chart in the DOM: draws a figure in place (Plotly.react keeps zoom and legend
// state across redraws through layout.uirevision), follows the size of its container, and frees
// Plotly's resources when the output goes away. Plotly itself is loaded once per page, on the
// first chart, as its own chunk.
import type { Config, PlotlyHTMLElement } from 'plotly.js';
import type { Figure } from '../loss-figure.js';

export type PlotlyModule = typeof import('plotly.js');

let loading: Promise<PlotlyModule> | undefined;
export function loadPlotly(): Promise<PlotlyModule> {
  loading ??= import('plotly.js-dist-min').then((module) => ((module as { default?: PlotlyModule }).default ?? module) as PlotlyModule);
  return loading;
}

const CONFIG: Partial<Config> = {
  displaylogo: false,
  responsive: false, // we follow the container ourselves (the output area resizes without window events)
  modeBarButtonsToRemove: ['lasso2d', 'select2d'],
  toImageButtonOptions: { format: 'png', scale: 2 },
};

export class PlotArea {
  readonly node: HTMLDivElement;
  private readonly resizeObserver: ResizeObserver;
  private drawn = false;
  private frame = 0;
  private pending: Figure | undefined;
  private drawing: Promise<void> | undefined;
  private readonly handlers: Array<[string, (data: unknown) => void]> = [];

  constructor(
    private readonly plotly: PlotlyModule,
    className: string,
    private readonly height: () => number,
  ) {
    this.node = document.createElement('div');
    this.node.className = `mambalab-plot ${className}`;
    this.resizeObserver = new ResizeObserver(() => this.scheduleResize());
    this.resizeObserver.observe(this.node);
  }

  /**
   * Draws `figure` in place. Calls that arrive while Plotly is still drawing are coalesced:
   * only the newest figure is drawn next (a dragged slider or a fast kernel never queues up).
   */
  draw(figure: Figure): Promise<void> {
    this.pending = figure;
    this.drawing ??= this.drawPending().finally(() => (this.drawing = undefined));
    return this.drawing;
  }

  private async drawPending(): Promise<void> {
    while (this.pending) {
      const figure = this.pending;
      this.pending = undefined;
      const layout = { ...figure.layout, height: this.height() };
      this.node.style.height = `${layout.height}px`;
      await this.plotly.react(this.node, figure.data, layout, CONFIG);
      if (!this.drawn) {
        this.drawn = true;
        for (const [event, handler] of this.handlers) this.listen(event, handler);
      }
    }
  }

  /** Plotly's events on this chart (relayout for zoom, click, …); Plotly can take them once it has drawn. */
  on(event: string, handler: (data: unknown) => void): void {
    this.handlers.push([event, handler]);
    if (this.drawn) this.listen(event, handler);
  }

  private listen(event: string, handler: (data: unknown) => void): void {
    (this.node as unknown as PlotlyHTMLElement).on(event as 'plotly_relayout', handler as () => void);
  }

  get width(): number {
    return this.node.clientWidth;
  }

  private scheduleResize(): void {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => {
      if (this.drawn && this.node.isConnected && this.node.clientWidth > 0) void this.plotly.Plots.resize(this.node);
    });
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
    this.resizeObserver.disconnect();
    if (this.drawn) this.plotly.purge(this.node);
    this.node.remove();
  }
}
