// Shared test fixtures: the real C4 sample and scratch directories.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export const repoRoot = join(import.meta.dirname, '..');
/** 1000 real C4 documents, the copy committed in the repository (datasets/README.md). */
export { C4_SAMPLE_FILE as C4_SAMPLE } from '../kernel/src/corpus/paths.js';

/** A fresh directory removed when the test file finishes. */
export function scratchDir(prefix = 'mambalab-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Seeded token rows for small models: batch rows of seqLen + 1 ids below vocab. */
export function randomTokens(batch: number, seqLen: number, vocab: number, seed = 1): number[][] {
  let s = seed;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % vocab;
  };
  return Array.from({ length: batch }, () => Array.from({ length: seqLen + 1 }, next));
}
