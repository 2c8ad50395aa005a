// A sweep's final losses against the varied value, under its one-line summary.
import { finalLossText, runName, type DisplayDoc } from '@mambalab/contract';
import { finalLossFigure } from '../final-figure.js';
import { element } from './controls.js';
import { PlotArea } from './plot-area.js';
import { ViewBase, type ViewContext } from './view.js';

const HEIGHT_PX = 360;

export class FinalLossView extends ViewBase {
  private readonly headline = element('div', 'mambalab-headline');
  private readonly area: PlotArea;

  constructor(private readonly context: ViewContext) {
    super('final', 'Final loss');
    this.area = new PlotArea(context.plotly, 'mambalab-final-plot', () => HEIGHT_PX);
    this.node.append(this.headline, this.area.node);
  }

  protected async draw(bundle: DisplayDoc): Promise<void> {
    const finalLoss = bundle.finalLoss;
    if (!finalLoss) return; // parseBundle guarantees it for a 'final' plot
    this.headline.textContent = finalLossText(finalLoss);
    await this.area.draw(finalLossFigure(finalLoss, (id) => runName(bundle, id), this.context.theme()));
  }

  dispose(): void {
    this.area.dispose();
    this.node.remove();
  }
}
