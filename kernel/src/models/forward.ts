// One pass of a batch through the engine, with the engine's complaints about the batch turned
// into the user's errors.
import { MambalabError } from '../errors.js';
import type { NativeMetrics } from '../native.js';

// The engine checks every token id against the vocabulary (on the CPU and the GPU alike) and
// says so in these words; a bad id is the user's batch to fix.
const OUTSIDE_VOCABULARY = /^token id -?\d+ at position \d+ of the batch is outside the vocabulary/;

/** Runs an engine pass, rejecting with a MambalabError when the batch holds ids outside the vocabulary. */
export async function checkedPass(pass: () => Promise<NativeMetrics>): Promise<NativeMetrics> {
  try {
    return await pass();
  } catch (error) {
    if (error instanceof Error && !(error instanceof MambalabError) && OUTSIDE_VOCABULARY.test(error.message)) {
      throw new MambalabError(`batch: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
