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
 * The offline datasets folder that travels beside a checkout: ../shared/datasets from the
 * repository root (or shared/datasets inside it), when either exists.
 */
export function sharedDatasetsDir(): string | undefined {
  return [join(REPO_ROOT, '..', 'shared', 'datasets'), join(REPO_ROOT, 'shared', 'datasets')].find((d) => existsSync(d));
}
