// The one place that touches tslab's internals. tslab's public display.raw() sends one MIME
// type per message; a bundle that reads everywhere needs several in one display_data, so we
// call the writer tslab keeps for the cell that is running (tslab 1.0.22, dist/jupyter.js).
import { createRequire } from 'node:module';

import type { MimeBundle, TextBundle } from './bundle.js';

/** tslab's writer of display_data (update = false) and update_display_data (update = true) for one cell. */
export type CellWriter = (
  content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: { display_id?: string } },
  update: boolean,
) => void;

interface TslabJupyterModule {
  lastWriteDisplayData: CellWriter | null;
}

const require = createRequire(import.meta.url);

function loadedTslabJupyter(): TslabJupyterModule | undefined {
  let path: string;
  try {
    path = require.resolve('tslab/dist/jupyter.js');
  } catch {
    return undefined;
  }
  // Only a kernel that is running has loaded it; loading it here would start nothing and
  // cost a TypeScript compiler's worth of startup.
  return require.cache[path]?.exports as TslabJupyterModule | undefined;
}

/** The writer of the cell running now, or undefined outside a tslab kernel. */
export function currentCellWriter(): CellWriter | undefined {
  return loadedTslabJupyter()?.lastWriteDisplayData ?? undefined;
}

/** Sends a full bundle; with a display id, later sends with update = true replace it in place. */
export function sendBundle(writer: CellWriter, bundle: MimeBundle | TextBundle, options: { displayId?: string; update?: boolean } = {}): void {
  writer({ data: { ...bundle }, metadata: {}, transient: options.displayId ? { display_id: options.displayId } : {} }, options.update ?? false);
}
