// The JupyterLab MIME extension: our renderer for notebook outputs, and a file type plus a
// document viewer so that a run's *.mambalab.json opens from the file browser.
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { MAMBALAB_MIME } from '@mambalab/contract';
import { MambalabOutput } from './widget.js';

export const FILE_TYPE = 'mambalab';
export const VIEWER = 'Mamba Lab plots';

// Ahead of every built-in renderer: the kernel sends text/html and text/plain beside our type, as
// fallbacks for other front ends, and JupyterLab's HTML renderer ranks 50 (a tie goes to it).
const RANK = 0;

const rendererFactory: IRenderMime.IRendererFactory = {
  // Safe: the data is only drawn by Plotly (which sanitises text); no HTML or script from it
  // reaches the page, so untrusted notebooks (e.g. opened from disk) render too.
  safe: true,
  mimeTypes: [MAMBALAB_MIME],
  defaultRank: RANK,
  createRenderer: (options) => new MambalabOutput(options.mimeType),
};

const extension: IRenderMime.IExtension = {
  id: 'mambalab-labextension:plots',
  description: 'Renders mambalab training outputs: loss curves, training-step savings, expert token counts.',
  rendererFactory,
  rank: RANK,
  // The document viewer reads the file as text; parseBundle reports invalid JSON in the view.
  dataType: 'string',
  fileTypes: [
    {
      name: FILE_TYPE,
      displayName: 'Mamba Lab run metrics',
      mimeTypes: [MAMBALAB_MIME],
      extensions: ['.mambalab.json'],
      fileFormat: 'text',
      iconClass: 'jp-MaterialIcon jp-JSONIcon',
    },
  ],
  documentWidgetFactoryOptions: {
    name: VIEWER,
    primaryFileType: FILE_TYPE,
    fileTypes: [FILE_TYPE],
    defaultFor: [FILE_TYPE],
  },
};

export default extension;
