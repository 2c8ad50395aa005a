// A display document as a Jupyter MIME bundle: our versioned type for the lab extension,
// plus text/plain and text/html so that the output reads anywhere.
import { MAMBALAB_MIME, type DisplayDoc } from '@mambalab/contract';

import { htmlTable } from './html.js';
import { textSummary } from './text.js';

export interface MimeBundle {
  [MAMBALAB_MIME]: DisplayDoc;
  'text/plain': string;
  'text/html': string;
}

/** An output without a document of ours (generated text): plain text and HTML. */
export interface TextBundle {
  'text/plain': string;
  'text/html': string;
}

export function toBundle(doc: DisplayDoc): MimeBundle {
  return { [MAMBALAB_MIME]: doc, 'text/plain': textSummary(doc), 'text/html': htmlTable(doc) };
}
