// The corpus files a list of paths names, for `prepare` and `loadTextCorpus` alike: files as
// given, folders searched for JSON lines. Both read them the same way (decompress.ts, lines.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { isPrepared } from '../data/manifest.js';
import { MambalabError } from '../errors.js';

// In folders: JSON lines, compressed or not. A bare .json is left out there (dataset.json,
// tokenizer.json are not corpora); named on the command line, any file is read.
const INPUT_FILE = /\.jsonl(\.gz|\.zst)?$|\.json(\.gz|\.zst)$/;

/** The corpus files the inputs name: files as given, folders searched (sorted, recursively). */
export function inputFiles(inputs: string[]): string[] {
  return inputs.flatMap((input) => {
    const path = resolve(input);
    if (!existsSync(path)) throw new MambalabError(`input ${input} does not exist`);
    if (statSync(path).isFile()) return [path];
    const found = walk(path).filter((f) => INPUT_FILE.test(f));
    if (found.length === 0) throw new MambalabError(`${input} holds no .jsonl, .json.gz, .jsonl.gz or .jsonl.zst files`);
    return found;
  });
}

/** Files under dir, sorted, leaving out hidden entries and prepared datasets (an --out inside an --input). */
function walk(dir: string): string[] {
  if (isPrepared(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Inputs that held no document, named; `filtered` documents were left out by a --sets filter. */
export function noDocumentsError(files: readonly string[], filtered = 0): MambalabError {
  const why = filtered > 0 ? ` (the --sets filter left out all ${filtered}; sets must match meta.redpajama_set_name exactly)` : '';
  const named = files.length === 1 ? files[0] : `${files.length} input files (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''})`;
  return new MambalabError(`no documents in ${named}${why}`);
}
