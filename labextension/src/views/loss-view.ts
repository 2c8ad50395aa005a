// Loss curves with their controls: x-axis, log scales, outlier fit, EMA smoothing, validation.
// The user's choices and zoom survive live updates; zooming re-spends the downsampling budget
// on the visible range so detail appears as you zoom in.
import { runsOfPlot, X_AXES, type DisplayDoc, type PlotSpec } from '@mambalab/contract';
import { dataRange, lossFigure, rangeFromRelayout, X_AXIS_LABELS, type LossViewState } from '../loss-figure.js';
import { checkbox, element, labeled, selectInput } from './controls.js';
import { PlotArea } from './plot-area.js';
import { colorLookup, ViewBase, type ViewContext } from './view.js';

const HEIGHT_PX = 380;

export class LossView extends ViewBase {
  private readonly area: PlotArea;
  private readonly state: LossViewState;
  /** the user's zoom, in axis units; undefined where Plotly (or the outlier fit) chooses */
  private xRange: [number, number] | undefined;
  private yRange: [number, number] | undefined;

  constructor(
    private readonly context: ViewContext,
    plot: PlotSpec,
  ) {
    super('loss', 'Loss');
    this.state = {
      x: plot.x ?? 'step',
      logX: false,
      logY: plot.logY ?? false,
      smoothing: plot.smoothing ?? 0,
      showValidation: plot.showValidation ?? true,
      ignoreOutliers: true,
    };
    const change = (apply: () => void): void => {
      apply();
      void this.redraw();
    };
    const smoothing = element('input', 'mambalab-smoothing jp-mod-styled');
    smoothing.type = 'number';
    smoothing.min = '0';
    smoothing.max = '0.999';
    smoothing.step = '0.001';
    smoothing.value = String(this.state.smoothing);
    smoothing.title = 'EMA weight per training step (the MoE-Mamba paper smooths with 0.001); 0 shows the raw loss';
    smoothing.addEventListener('change', () => {
      const alpha = Number(smoothing.value);
      if (Number.isFinite(alpha) && alpha >= 0 && alpha < 1) change(() => (this.state.smoothing = alpha));
      else smoothing.value = String(this.state.smoothing);
    });
    this.controls.append(
      labeled(
        'x',
        selectInput(
          X_AXES.map((key) => [key, X_AXIS_LABELS[key]] as const),
          this.state.x,
          (x) => change(() => {
            this.state.x = x;
            this.xRange = undefined;
          }),
        ),
      ),
      checkbox('log x', this.state.logX, (on) => change(() => {
        this.state.logX = on;
        this.xRange = undefined;
      })),
      checkbox('log y', this.state.logY, (on) => change(() => {
        this.state.logY = on;
        this.yRange = undefined;
      })),
      checkbox('ignore outliers', this.state.ignoreOutliers, (on) => change(() => {
        this.state.ignoreOutliers = on;
        this.yRange = undefined;
      })),
      labeled('EMA α', smoothing),
      checkbox('validation', this.state.showValidation, (on) => change(() => (this.state.showValidation = on))),
    );
    this.area = new PlotArea(context.plotly, 'mambalab-loss-plot', () => HEIGHT_PX);
    this.area.on('plotly_relayout', (event) => {
      const x = rangeFromRelayout(event as Record<string, unknown>, 'xaxis');
      const y = rangeFromRelayout(event as Record<string, unknown>, 'yaxis');
      if (x === undefined && y === undefined) return;
      if (x !== undefined) this.xRange = x ?? undefined;
      if (y !== undefined) this.yRange = y ?? undefined;
      void this.redraw();
    });
    this.node.append(this.area.node);
  }

  protected async draw(bundle: DisplayDoc, plot: PlotSpec): Promise<void> {
    const theme = this.context.theme();
    const buckets = Math.min(Math.max(this.area.width, 500), 2000);
    const figure = lossFigure(runsOfPlot(bundle, plot), this.state, colorLookup(bundle, theme), theme, {
      buckets,
      xRange: this.xRange && dataRange(this.xRange, this.state.logX),
      yRange: this.yRange,
    });
    this.showNotes(figure.notes);
    await this.area.draw(figure);
  }

  dispose(): void {
    this.area.dispose();
    this.node.remove();
  }
}
