// Where mambalab keeps data: downloads, prepared shards, tokenizer files.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** $MAMBALAB_DATA_DIR, else $XDG_CACHE_HOME/mambalab, else ~/.cache/mambalab. */
export function dataDir(): string {
  const explicit = process.env.MAMBALAB_DATA_DIR;
  if (explicit) return resolve(explicit);
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mambalab');
}

/** The repository's root, when this module runs from a checkout (kernel/src/corpus or kernel/dist/corpus). */
const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

/**
 * The 1000-document real C4 sample committed in the repository (datasets/README.md has its
 * source and licence): the offline default, so a fresh clone with no network and nothing
 * beside it still has C4 to train on.
 */
export const C4_SAMPLE_FILE = join(REPO_ROOT, 'datasets', 'c4', 'c4-sample.00000-of-00001.json.gz');

/**
 * The offline datasets folder that travels beside a checkout: ../shared/datasets from the
 * repository root (or shared/datasets inside it), when either exists.
 */
export function sharedDatasetsDir(): string | undefined {
  return [join(REPO_ROOT, '..', 'shared', 'datasets'), join(REPO_ROOT, 'shared', 'datasets')].find((d) => existsSync(d));
}
