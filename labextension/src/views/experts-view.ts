// Per-layer expert token counts: heatmap, per-layer bars and the balance table at one recorded
// step, with a slider over the recorded steps. While the slider sits on the newest step it
// follows live updates; moved back, it stays where the user put it.
import { formatInteger, runsOfPlot, type DisplayDoc, type PlotSpec, type RunDoc } from '@mambalab/contract';
import { BALANCE_COLUMNS, balanceRows, gridShape, heatmapFigure, layerBarsFigure } from '../experts-figure.js';
import { routingAt } from '../experts.js';
import { element, labeled, selectInput, setOptions } from './controls.js';
import { PlotArea } from './plot-area.js';
import { ViewBase, type ViewContext } from './view.js';

export class ExpertsView extends ViewBase {
  private readonly runPicker: HTMLSelectElement;
  private readonly runPickerLabel: HTMLLabelElement;
  private readonly slider: HTMLInputElement;
  private readonly stepLabel: HTMLElement;
  private readonly heatmap: PlotArea;
  private readonly bars: PlotArea;
  private readonly table: HTMLTableElement;
  private runId: string | undefined;
  private stepIndex = -1;
  private following = true;
  private layers = 1;

  constructor(
    private readonly context: ViewContext,
  ) {
    super('experts', 'Expert token counts per layer');
    this.runPicker = selectInput<string>([], '', (id) => {
      this.runId = id;
      this.following = true;
      void this.redraw();
    });
    this.runPickerLabel = labeled('run', this.runPicker);
    this.slider = element('input', 'mambalab-step-slider');
    this.slider.type = 'range';
    this.slider.min = '0';
    this.slider.step = '1';
    this.slider.addEventListener('input', () => {
      this.stepIndex = Number(this.slider.value);
      this.following = this.stepIndex === Number(this.slider.max);
      void this.redraw();
    });
    this.stepLabel = element('span', 'mambalab-step-label');
    const sliderControl = labeled('step', this.slider);
    sliderControl.append(this.stepLabel);
    this.controls.append(this.runPickerLabel, sliderControl);
    this.heatmap = new PlotArea(context.plotly, 'mambalab-experts-heatmap', () => Math.max(180, 28 * this.layers + 70));
    this.bars = new PlotArea(context.plotly, 'mambalab-experts-bars', () => gridShape(this.layers).rows * 150 + 40);
    this.table = element('table', 'mambalab-balance-table');
    this.node.append(this.heatmap.node, this.bars.node, this.table);
  }

  protected async draw(bundle: DisplayDoc, plot: PlotSpec): Promise<void> {
    const runs = runsOfPlot(bundle, plot).filter((run): run is RunDoc & Required<Pick<RunDoc, 'experts'>> => run.experts !== undefined);
    setOptions(this.runPicker, runs.map((run) => [run.id, run.name] as const), this.runId ?? runs[0]?.id ?? '');
    this.runPickerLabel.hidden = runs.length < 2;
    const run = runs.find((r) => r.id === this.runId) ?? runs[0];
    const experts = run?.experts;
    const recorded = experts?.step.length ?? 0;
    this.setParts(recorded > 0);
    if (!run || !experts || recorded === 0) {
      this.showNotes([run ? `${run.name}: no expert counts recorded yet` : 'None of these runs has MoE layers, so there are no expert counts to show.']);
      return;
    }
    this.showNotes([]);
    this.runId = run.id;
    this.slider.max = String(recorded - 1);
    if (this.following || this.stepIndex < 0 || this.stepIndex >= recorded) this.stepIndex = recorded - 1;
    this.slider.value = String(this.stepIndex);
    this.stepLabel.textContent = `${formatInteger(experts.step[this.stepIndex]!)} (${this.stepIndex + 1} of ${recorded})`;
    const routing = routingAt(experts, this.stepIndex);
    this.layers = routing.length;
    const theme = this.context.theme();
    this.fillTable(balanceRows(routing));
    await Promise.all([
      this.heatmap.draw(heatmapFigure(routing, experts.numExperts, theme)),
      this.bars.draw(layerBarsFigure(routing, experts.numExperts, theme)),
    ]);
  }

  private setParts(visible: boolean): void {
    for (const part of [this.heatmap.node, this.bars.node, this.table, this.slider.parentElement!]) part.hidden = !visible;
  }

  private fillTable(rows: string[][]): void {
    const head = element('tr', '');
    head.append(...BALANCE_COLUMNS.map((name) => element('th', '', name)));
    this.table.replaceChildren(
      element('caption', '', 'Balance per layer at this step: max/mean 1 and CV 0 are perfectly balanced'),
      head,
      ...rows.map((cells) => {
        const tr = element('tr', '');
        tr.append(...cells.map((cell) => element('td', '', cell)));
        return tr;
      }),
    );
  }

  dispose(): void {
    this.heatmap.dispose();
    this.bars.dispose();
    this.node.remove();
  }
}
