// Training-step savings of one comparison (the user can switch between the bundle's
// comparisons, e.g. the same pair measured in steps and in tokens).
import { axisUnit, formatSavings, runName, savingsHeadline, type DisplayDoc, type PlotSpec } from '@mambalab/contract';
import { savingsFigure } from '../savings-figure.js';
import { element, labeled, selectInput, setOptions } from './controls.js';
import { PlotArea } from './plot-area.js';
import { colorLookup, ViewBase, type ViewContext } from './view.js';

const HEIGHT_PX = 400;
const BUCKETS = 1500;

export class SavingsView extends ViewBase {
  private readonly headline: HTMLElement;
  private readonly picker: HTMLSelectElement;
  private readonly pickerLabel: HTMLLabelElement;
  private readonly area: PlotArea;
  private chosen: number | undefined;

  constructor(
    private readonly context: ViewContext,
    plot: PlotSpec,
  ) {
    super('savings', 'Training-step savings');
    this.chosen = plot.comparison;
    this.picker = selectInput<string>([], '', (value) => {
      this.chosen = Number(value);
      void this.redraw();
    });
    this.pickerLabel = labeled('comparison', this.picker);
    this.controls.append(this.pickerLabel);
    this.headline = element('div', 'mambalab-headline');
    this.area = new PlotArea(context.plotly, 'mambalab-savings-plot', () => HEIGHT_PX);
    this.node.append(this.headline, this.area.node);
  }

  protected async draw(bundle: DisplayDoc, plot: PlotSpec): Promise<void> {
    const comparisons = bundle.comparisons ?? [];
    const index = Math.min(this.chosen ?? plot.comparison ?? 0, comparisons.length - 1);
    setOptions(
      this.picker,
      comparisons.map((c, i) => [String(i), `${runName(bundle, c.candidate)} vs ${runName(bundle, c.baseline)} (${axisUnit(c.axis)})`] as const),
      String(index),
    );
    this.pickerLabel.hidden = comparisons.length < 2;
    const comparison = comparisons[index];
    const baseline = bundle.runs.find((run) => run.id === comparison?.baseline);
    const candidate = bundle.runs.find((run) => run.id === comparison?.candidate);
    if (!comparison || !baseline || !candidate) return; // parseBundle guarantees these; nothing to draw otherwise
    const theme = this.context.theme();
    this.headline.textContent = savingsHeadline(comparison, { baseline: baseline.name, candidate: candidate.name });
    this.headline.dataset['ratio'] = comparison.ratio == null ? '' : formatSavings(comparison.ratio, axisUnit(comparison.axis));
    this.showNotes(comparison.curve.loss.length === 0 ? ['No loss level reached by both runs yet: the savings curve is empty.'] : []);
    await this.area.draw(savingsFigure(comparison, baseline, candidate, colorLookup(bundle, theme), theme, BUCKETS));
  }

  dispose(): void {
    this.area.dispose();
    this.node.remove();
  }
}
