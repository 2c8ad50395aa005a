// What the output widget needs from each kind of plot view.
import type { DisplayDoc, PlotKind, PlotSpec, RunDoc } from '@mambalab/contract';
import { runColor, type PlotTheme } from '../theme.js';
import { element } from './controls.js';
import type { PlotlyModule } from './plot-area.js';

export interface ViewContext {
  plotly: PlotlyModule;
  theme: () => PlotTheme;
}

export interface PlotView {
  readonly kind: PlotKind;
  readonly node: HTMLElement;
  /** new data from the kernel (or the file): redraw in place, keeping the user's choices */
  update(bundle: DisplayDoc, plot: PlotSpec): Promise<void>;
  /** same data, new theme */
  redraw(): Promise<void>;
  dispose(): void;
}

/** A run keeps its colour in every plot of one output: colour by position in bundle.runs. */
export function colorLookup(bundle: DisplayDoc, theme: PlotTheme): (run: RunDoc) => string {
  return (run) => runColor(theme, Math.max(bundle.runs.findIndex((r) => r.id === run.id), 0));
}

/**
 * What every view shares: a title, a row of controls and a line for notes above its charts, and
 * the latest data, kept so that a control or a theme change can redraw without the kernel.
 */
export abstract class ViewBase implements PlotView {
  readonly node: HTMLElement;
  protected readonly controls = element('div', 'mambalab-controls');
  private readonly title = element('div', 'mambalab-view-title');
  private readonly notes = element('div', 'mambalab-notes');
  private data: { bundle: DisplayDoc; plot: PlotSpec } | undefined;

  constructor(
    readonly kind: PlotKind,
    private readonly defaultTitle: string,
  ) {
    this.node = element('section', `mambalab-view mambalab-view-${kind}`);
    this.node.append(this.title, this.controls, this.notes);
  }

  async update(bundle: DisplayDoc, plot: PlotSpec): Promise<void> {
    this.data = { bundle, plot };
    this.title.textContent = plot.title ?? this.defaultTitle;
    await this.redraw();
  }

  async redraw(): Promise<void> {
    if (this.data) await this.draw(this.data.bundle, this.data.plot);
  }

  protected abstract draw(bundle: DisplayDoc, plot: PlotSpec): Promise<void>;

  protected showNotes(notes: readonly string[]): void {
    this.notes.replaceChildren(...notes.map((note) => element('div', 'mambalab-note', note)));
  }

  abstract dispose(): void;
}
