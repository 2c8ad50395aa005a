// What the "Mamba Lab (TypeScript)" kernel adds to tslab once it started: every fit() in a
// cell draws itself live, and Jupyter's interrupt (SIGINT) stops training at the next step
// boundary; fit() then rejects with TrainingInterrupted, so the cell ends in error (and "run
// all" stops there) after the run and its checkpoint are saved. Without training to stop,
// an interrupt does what tslab does: it rejects the running cell at once.
import { setFitWatcher } from '../train/trainer.js';
import { LiveFitWatcher } from './fit-watcher.js';
import { currentCellWriter } from './tslab.js';

let installed: LiveFitWatcher | undefined;

/** Call after tslab's startKernel() (which registers its own SIGINT listener). */
export function installKernelHooks(): LiveFitWatcher {
  if (installed) return installed;
  const tslabListeners = process.listeners('SIGINT');
  const interruptCell = () => {
    for (const listener of tslabListeners) listener('SIGINT');
  };
  const watcher = new LiveFitWatcher({ writer: currentCellWriter });
  setFitWatcher(watcher);
  process.removeAllListeners('SIGINT');
  // A second interrupt while a step is still running interrupts the cell at once, as tslab would.
  process.on('SIGINT', () => {
    if (!watcher.interrupt()) interruptCell();
  });
  installed = watcher;
  return watcher;
}
