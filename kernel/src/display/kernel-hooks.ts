// What the "Mamba Lab (TypeScript)" kernel adds to tslab once it started: every fit() and
// generate() in a cell draws itself live, and Jupyter's interrupt (SIGINT) stops training at
// the next step boundary and generation before its next chunk; fit() then rejects with
// TrainingInterrupted (generate() with GenerationInterrupted), so the cell ends in error (and
// "run all" stops there) after the run and its checkpoint are saved. Without training or
// generation to stop, an interrupt does what tslab does: it rejects the running cell at once.
import { setGenerateWatcher } from '../generate/generate.js';
import { setFitWatcher } from '../train/trainer.js';
import { LiveFitWatcher } from './fit-watcher.js';
import { LiveGenerateWatcher } from './generate-watcher.js';
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
  const generations = new LiveGenerateWatcher({ writer: currentCellWriter });
  setGenerateWatcher(generations);
  process.removeAllListeners('SIGINT');
  // A second interrupt while a step is still running interrupts the cell at once, as tslab would.
  process.on('SIGINT', () => {
    const stopped = watcher.interrupt();
    if (!generations.interrupt() && !stopped) interruptCell();
  });
  installed = watcher;
  return watcher;
}
