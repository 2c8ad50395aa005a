// `prepare`: JSON-lines corpus files (.json.gz, .jsonl.zst, .jsonl) → tokenized Arrow shards.
// Files stream through decompression and a line chunker on this thread; worker threads parse
// and tokenize the chunks; shards are written in input order. Everything is written into a
// staging folder beside --out and swapped in at the end, so a failed run leaves --out as it was.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import { isPrepared, readManifest, writeManifest, type DatasetManifest, type InputFile } from '../data/manifest.js';
import { ShardWriter } from '../data/shards.js';
import { MambalabError } from '../errors.js';
import { recognize } from './catalog.js';
import { readDecompressed } from './decompress.js';
import { inputFiles, noDocumentsError } from './inputs.js';
import { badRecordError, LineChunker } from './lines.js';
import type { TokenizedChunk } from './tokenize-chunk.js';
import { loadTokenizer, type TokenizerName } from './tokenizer.js';
import { TokenizerPool } from './worker-pool.js';

export interface PrepareOptions {
  /** Files, or folders searched for .json(l)[.gz|.zst] files. */
  inputs: string[];
  out: string;
  tokenizer: TokenizerName;
  /** tokenizer.json for 'neox' (default: see defaultNeoxTokenizerFile). */
  tokenizerFile?: string;
  /** Keep only documents whose SlimPajama meta.redpajama_set_name is one of these. */
  sets?: string[];
  /** 'error' (default): stop at the first bad record. 'skip': count it, report it, go on. */
  onBadRecord?: 'error' | 'skip';
  /** Tokens per shard (default 2^26, 128 MiB). */
  shardTokens?: number;
  /** Tokenizer threads (default: one per core). */
  workers?: number;
  /** Provenance for the metadata; known corpora (C4, SlimPajama) are recognized by file name. */
  source?: string;
  license?: string;
  onProgress?: (progress: PrepareProgress) => void;
}

export interface PrepareProgress {
  phase: 'hash' | 'tokenize';
  file: string;
  /** Compressed input bytes done, of all inputs. */
  bytesDone: number;
  bytesTotal: number;
  documents: number;
  tokens: number;
}

const MAX_EXAMPLES = 20;

async function sha256(file: string, onRead: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    onRead((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

export async function prepare(options: PrepareOptions): Promise<DatasetManifest> {
  if (options.inputs.length === 0) throw new MambalabError('prepare: no --input given');
  const files = inputFiles(options.inputs);
  const out = resolve(options.out);
  if (existsSync(out) && (!statSync(out).isDirectory() || (readdirSync(out).length > 0 && !isPrepared(out)))) {
    throw new MambalabError(`prepare: --out ${options.out} exists and is not a prepared dataset; choose a new or empty folder`);
  }
  const tokenizer = loadTokenizer(options.tokenizer, { file: options.tokenizerFile }); // fails here, not in a worker
  const onBadRecord = options.onBadRecord ?? 'error';
  const shardTokens = options.shardTokens ?? 1 << 26;
  const progress: PrepareProgress = { phase: 'hash', file: '', bytesDone: 0, bytesTotal: 0, documents: 0, tokens: 0 };
  const sizes = files.map((f) => statSync(f).size);
  progress.bytesTotal = sizes.reduce((a, b) => a + b, 0);

  // Hash every input first, so that each shard's metadata can name all of them.
  const inputs: InputFile[] = [];
  for (const [i, path] of files.entries()) {
    progress.file = path;
    const digest = await sha256(path, (n) => {
      progress.bytesDone += n;
      options.onProgress?.(progress);
    });
    inputs.push({ path, bytes: sizes[i]!, sha256: digest, lines: 0, documents: 0 });
  }

  const corpus = recognize(files.map((f) => basename(f)));
  const source = options.source ?? corpus?.title ?? `unknown (${files.length} files; pass --source)`;
  const license = options.license ?? corpus?.license ?? 'unknown (pass --license)';
  const metadata = {
    'mambalab.format': 'mambalab-tokens/1',
    source,
    license,
    tokenizer: tokenizer.name,
    vocab_size: String(tokenizer.vocabSize),
    end_of_text: String(tokenizer.endOfText),
    inputs: JSON.stringify(inputs.map(({ path, bytes, sha256 }) => ({ file: basename(path), bytes, sha256 }))),
  };

  const staging = `${out}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const writer = new ShardWriter(staging, shardTokens, metadata);
  const pool = new TokenizerPool({ tokenizer: tokenizer.name, tokenizerFile: options.tokenizerFile, sets: options.sets, workers: options.workers });
  const totals = { textBytes: 0, blankLines: 0, filtered: 0 };
  const skipped = { count: 0, examples: [] as string[] };
  const sets: Record<string, { documents: number; tokens: number }> = {};
  progress.phase = 'tokenize';
  progress.bytesDone = 0;

  const take = (input: InputFile, r: TokenizedChunk) => {
    for (const bad of r.bad) {
      if (onBadRecord === 'error') throw badRecordError(input.path, bad);
      skipped.count++;
      if (skipped.examples.length < MAX_EXAMPLES) skipped.examples.push(`${input.path}:${bad.line}: ${bad.reason}`);
    }
    writer.add(r.tokens, r.lengths, r.sets);
    r.lengths.forEach((n, d) => {
      const name = r.sets?.[d];
      if (!name) return;
      const s = (sets[name] ??= { documents: 0, tokens: 0 });
      s.documents++;
      s.tokens += n;
    });
    const documents = r.lengths.length;
    input.documents += documents;
    input.lines += documents + r.filtered + r.bad.length + r.blank;
    totals.textBytes += r.textBytes;
    totals.blankLines += r.blank;
    totals.filtered += r.filtered;
    progress.documents += documents;
    progress.tokens += r.tokens.length;
    options.onProgress?.(progress);
  };

  try {
    for (const input of inputs) {
      progress.file = input.path;
      const chunker = new LineChunker(input.path);
      const inflight: Promise<TokenizedChunk>[] = [];
      const submit = (chunks: ReturnType<LineChunker['push']>) => {
        for (const chunk of chunks) {
          const result = pool.run(chunk);
          result.catch(() => {}); // awaited in order below; this only keeps an early failure from going unhandled
          inflight.push(result);
        }
      };
      const read = (n: number) => (progress.bytesDone += n);
      for await (const data of readDecompressed(input.path, read)) {
        submit(chunker.push(data));
        while (inflight.length >= 2 * pool.size) take(input, await inflight.shift()!);
      }
      submit(chunker.end());
      while (inflight.length > 0) take(input, await inflight.shift()!);
    }
    const shards = writer.finish();
    if (progress.documents === 0) throw noDocumentsError(files, totals.filtered);
    writeManifest(staging, {
      source,
      license,
      tokenizer: tokenizer.name,
      vocabSize: tokenizer.vocabSize,
      endOfText: tokenizer.endOfText,
      documents: progress.documents,
      tokens: progress.tokens,
      textBytes: totals.textBytes,
      shards,
      inputs,
      ...(Object.keys(sets).length > 0 ? { sets } : {}),
      ...(options.sets ? { setsFilter: options.sets } : {}),
      skipped,
      blankLines: totals.blankLines,
      filtered: totals.filtered,
      created: new Date().toISOString(),
    });
    swapIn(staging, out);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  } finally {
    await pool.close();
  }
  return readManifest(out);
}

/** Replaces out with the finished staging folder (a dataset already there is replaced whole). */
function swapIn(staging: string, out: string): void {
  if (!existsSync(out)) {
    mkdirSync(dirname(out), { recursive: true });
    renameSync(staging, out);
    return;
  }
  const old = `${out}.old-${process.pid}`;
  renameSync(out, old);
  renameSync(staging, out);
  rmSync(old, { recursive: true, force: true });
}
