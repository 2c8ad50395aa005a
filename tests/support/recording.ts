// A token source that remembers what it hands out, to check which batches a training saw.
import type { TokenSource } from '../../kernel/src/data/source.js';

/** `data`, remembering the first tokens of every training batch each sampler hands out. */
export function recording(data: TokenSource): { source: TokenSource; batches: string[][] } {
  const batches: string[][] = [];
  const source: TokenSource = {
    description: data.description,
    vocabSize: data.vocabSize,
    stats: (split) => data.stats(split),
    sampler(split, options) {
      const inner = data.sampler(split, options);
      const seen: string[] = [];
      if (split === 'train') batches.push(seen);
      return {
        next: () => {
          const b = inner.next();
          seen.push(Array.from(b.tokens.subarray(0, 8)).join(','));
          return b;
        },
        state: () => inner.state(),
      };
    },
  };
  return { source, batches };
}
