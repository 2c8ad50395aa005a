// Interrupts as the notebook kernel delivers them: a LiveFitWatcher (drawing into a cell that
// keeps nothing) whose interrupt() a test calls where the kernel would on SIGINT.
import { LiveFitWatcher } from '../../kernel/src/display/fit-watcher.js';
import { setFitWatcher } from '../../kernel/src/train/trainer.js';

export async function withKernelInterrupts<T>(body: (interrupt: () => boolean) => Promise<T>): Promise<T> {
  const cell = () => {};
  const watcher = new LiveFitWatcher({ writer: () => cell });
  const previous = setFitWatcher(watcher);
  try {
    return await body(() => watcher.interrupt());
  } finally {
    setFitWatcher(previous);
  }
}
