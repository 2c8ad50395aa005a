// `mambalab data fetch`: picks a corpus's files from the Hub's listing (which also gives
// each file's checksum) and downloads them in parallel into the cache:
//   <data dir>/raw/c4/<variant>/c4-<split>.NNNNN-of-MMMMM.json.gz
//   <data dir>/raw/slimpajama/<split>/chunk<k>/example_<train|holdout>_<i>.jsonl.zst
//   <data dir>/tokenizers/gpt-neox-20b/tokenizer.json
import { dirname, join } from 'node:path';

import { MambalabError } from '../errors.js';
import { C4, SLIMPAJAMA } from './catalog.js';
import { downloadFile, type DownloadTask } from './download.js';
import { listFolder, resolveUrl, type HubFile, type RepoType } from './hub.js';
import { dataDir } from './paths.js';
import { defaultNeoxTokenizerFile } from './tokenizer.js';

export interface FetchOptions {
  /** Where raw corpus files go (default <data dir>/raw). */
  dir?: string;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  retryDelayMs?: number;
  onProgress?: (progress: FetchProgress) => void;
}

export interface FetchProgress {
  files: number;
  filesDone: number;
  bytesTotal: number;
  bytesDone: number;
}

export interface FetchResult {
  /** The local files, in the order asked for. */
  files: string[];
  downloaded: number;
  /** Already there and verified. */
  present: number;
}

export const C4_VARIANTS = ['en', 'en.noblocklist', 'realnewslike', 'en.noclean'];

export async function fetchC4(selection: { variant?: string; split: string; shards: number[] }, options: FetchOptions = {}): Promise<FetchResult> {
  const variant = selection.variant ?? 'en';
  if (!C4_VARIANTS.includes(variant)) throw new MambalabError(`c4: --variant ${variant} is not one of ${C4_VARIANTS.join(', ')}`);
  if (selection.split !== 'train' && selection.split !== 'validation') throw new MambalabError(`c4: --split must be train or validation, got '${selection.split}'`);
  const listing = await listFolder('dataset', C4.repo, variant);
  const pattern = new RegExp(`^${escape(variant)}/c4-${selection.split}\\.(\\d{5})-of-\\d{5}\\.json\\.gz$`);
  const files = pick(listing, pattern, selection.shards, `c4 ${variant} ${selection.split} shard`);
  const root = options.dir ?? join(dataDir(), 'raw');
  return downloadAll(files.map((f) => task('dataset', C4.repo, f, join(root, 'c4', f.path))), options);
}

export async function fetchSlimPajama(selection: { split: string; chunk: number; files: number[] }, options: FetchOptions = {}): Promise<FetchResult> {
  const chunks = selection.split === 'train' ? 10 : 5;
  if (!['train', 'validation', 'test'].includes(selection.split)) throw new MambalabError(`slimpajama: --split must be train, validation or test, got '${selection.split}'`);
  if (!Number.isInteger(selection.chunk) || selection.chunk < 1 || selection.chunk > chunks) {
    throw new MambalabError(`slimpajama: --chunk must be 1 to ${chunks} for ${selection.split}, got ${selection.chunk}`);
  }
  const folder = `${selection.split}/chunk${selection.chunk}`;
  const listing = await listFolder('dataset', SLIMPAJAMA.repo, folder);
  const pattern = new RegExp(`^${folder}/example_(?:train|holdout)_(\\d+)\\.jsonl\\.zst$`);
  const files = pick(listing, pattern, selection.files, `slimpajama ${folder} file`);
  const root = options.dir ?? join(dataDir(), 'raw');
  return downloadAll(files.map((f) => task('dataset', SLIMPAJAMA.repo, f, join(root, 'slimpajama', f.path))), options);
}

/** GPT-NeoX-20B's tokenizer.json, into the place `--tokenizer neox` looks by default. */
export async function fetchNeoxTokenizer(options: FetchOptions & { dest?: string } = {}): Promise<FetchResult> {
  const repo = 'EleutherAI/gpt-neox-20b';
  const file = (await listFolder('model', repo, '')).find((f) => f.path === 'tokenizer.json');
  if (!file) throw new MambalabError(`${repo} lists no tokenizer.json`);
  return downloadAll([task('model', repo, file, options.dest ?? defaultNeoxTokenizerFile())], options);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The listed files whose number (the pattern's group) is asked for, in the order asked. */
function pick(listing: HubFile[], pattern: RegExp, numbers: number[], what: string): HubFile[] {
  const byNumber = new Map<number, HubFile>();
  for (const f of listing) {
    const m = pattern.exec(f.path);
    if (m) byNumber.set(Number(m[1]), f);
  }
  if (byNumber.size === 0) throw new MambalabError(`the listing holds no ${what}s (expected names like ${pattern.source})`);
  const known = [...byNumber.keys()].sort((a, b) => a - b);
  return numbers.map((n) => {
    const f = byNumber.get(n);
    if (!f) throw new MambalabError(`there is no ${what} ${n}: the listing has ${known[0]} to ${known.at(-1)} (${known.length} files)`);
    return f;
  });
}

function task(repoType: RepoType, repo: string, file: HubFile, dest: string): DownloadTask {
  return { url: resolveUrl(repoType, repo, file.path), dest, size: file.size, checksum: file.sha256 ?? file.gitOid, gitBlob: !file.sha256 };
}

/** Downloads every task, `concurrency` at a time; failures are gathered and reported together. */
async function downloadAll(tasks: DownloadTask[], options: FetchOptions): Promise<FetchResult> {
  const progress: FetchProgress = { files: tasks.length, filesDone: 0, bytesTotal: tasks.reduce((n, t) => n + t.size, 0), bytesDone: 0 };
  const result: FetchResult = { files: tasks.map((t) => t.dest), downloaded: 0, present: 0 };
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      const t = tasks[i]!;
      let counted = 0;
      try {
        const outcome = await downloadFile(t, {
          retryDelayMs: options.retryDelayMs,
          onBytes: (n) => {
            counted += n;
            progress.bytesDone += n;
            options.onProgress?.(progress);
          },
        });
        result[outcome]++;
        progress.bytesDone += t.size - counted; // a present file counts whole
      } catch (e) {
        progress.bytesDone -= counted;
        failures.push(e instanceof MambalabError ? e.message : `${t.url}: ${(e as Error).message}`);
      }
      progress.filesDone++;
      options.onProgress?.(progress);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, tasks.length)) }, worker));
  if (failures.length > 0) {
    const where = tasks.length > 0 ? dirname(tasks[0]!.dest) : '';
    throw new MambalabError(`${failures.length} of ${tasks.length} downloads failed (into ${where}):\n  ${failures.join('\n  ')}`);
  }
  return result;
}
