// What the "Mamba Lab (TypeScript)" kernel adds to tslab once it started: every fit() in a
// cell draws itself live, and Jupyter's interrupt (SIGINT, which tslab turns into rejecting
// the running cell at once) first stops training at the next step boundary, so the run and
// its checkpoint are complete before the cell ends.
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
  const watcher = new LiveFitWatcher({
    writer: currentCellWriter,
    onInterruptedEnd: (message) => {
      process.stderr.write(message + '\n');
      // Ends the cell with an error, so "run all" stops there. The code that awaited fit()
      // still finishes its synchronous bookkeeping (trainRun writes the checkpoint and the
      // run) in this same turn of the event loop, before the kernel reads its next request.
      interruptCell();
    },
  });
  setFitWatcher(watcher);
  process.removeAllListeners('SIGINT');
  // A second interrupt while a step is still running interrupts the cell at once, as tslab would.
  process.on('SIGINT', () => {
    if (!watcher.interrupt()) interruptCell();
  });
  installed = watcher;
  return watcher;
}
