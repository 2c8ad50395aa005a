// `mambalab bench tokenize`: how fast text becomes tokens, ours beside Hugging Face
// `tokenizers` (Rust, batched over all cores) and gpt-tokenizer (JS) on the same text in the
// same run, and what sampling a batch costs next to a training step (bench-sampler.ts).
// Pass 1 starts with empty word caches (every tokenizer here caches words); later passes
// repeat the same text with warm caches. A long corpus runs between the two: its common words
// are cached after the first megabytes, its rare words never are.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';

import { encode as gpt2Reference } from 'gpt-tokenizer/encoding/gpt2';

import { TokenBuffer } from '../corpus/bpe.js';
import { readDecompressed } from '../corpus/decompress.js';
import { LineChunker, parseLines, type LineChunk } from '../corpus/lines.js';
import { C4_SAMPLE_FILE, sharedDatasetsDir } from '../corpus/paths.js';
import { defaultNeoxTokenizerFile, gpt2TokenizerJson, loadTokenizer, type TokenizerName } from '../corpus/tokenizer.js';
import { TokenizerPool } from '../corpus/worker-pool.js';
import { MambalabError } from '../errors.js';
import { intFlag, parseFlags } from './args.js';
import { benchSampler } from './bench-sampler.js';

export const benchTokenizeUsage = `  --corpus FILE       JSON-lines corpus (default: the C4 sample in datasets/c4)
  --passes N          passes over the corpus (default 2: cold caches, then warm)
  --threads N         our tokenizer's worker threads (default: one per core)
  --tokenizer-file F  GPT-NeoX tokenizer.json (default: the cache's, else ../shared/datasets's)
  --no-sampler        skip the sampler-versus-step timing`;

export async function benchTokenize(argv: string[], log: (line: string) => void) {
  const { values: f } = parseFlags('bench tokenize', argv, {
    corpus: { type: 'string' },
    passes: { type: 'string' },
    threads: { type: 'string' },
    'tokenizer-file': { type: 'string' },
    'no-sampler': { type: 'boolean', default: false },
  });
  const shared = sharedDatasetsDir();
  const corpus = f.corpus ?? C4_SAMPLE_FILE;
  const neox = f['tokenizer-file'] ?? [defaultNeoxTokenizerFile(), shared && join(shared, 'tokenizers', 'gpt-neox-20b', 'tokenizer.json')].find((p) => p && existsSync(p));
  return timeTokenizers({
    corpus,
    passes: intFlag('passes', f.passes, 2, 1),
    threads: f.threads === undefined ? availableParallelism() : intFlag('threads', f.threads, 1, 1),
    neoxTokenizerFile: neox,
    sampler: !f['no-sampler'],
    log,
  });
}

interface TokenizeBenchOptions {
  /** A JSON-lines corpus file (the bench uses its "text" fields). */
  corpus: string;
  passes: number;
  /** Worker threads for our tokenizer. */
  threads: number;
  /** GPT-NeoX tokenizer.json; NeoX is left out when this file does not exist. */
  neoxTokenizerFile?: string;
  /** Also time the batch sampler against a training step. */
  sampler: boolean;
  log: (line: string) => void;
}

interface TokenizerTiming {
  tokenizer: TokenizerName;
  kind: 'mambalab' | 'mambalab-1-thread' | 'hf-tokenizers' | 'gpt-tokenizer';
  implementation: string;
  threads: number;
  /** MB (10^6 bytes) of UTF-8 text per second of wall-clock time, one entry per pass. */
  mbPerS: number[];
  /** MB of text per second of this process's CPU time (all threads), one entry per pass. */
  mbPerCpuS: number[];
  /** Tokens of all documents, end-of-text not counted: every implementation must agree. */
  tokens: number;
}

const MB = 1e6;

async function loadCorpus(file: string): Promise<{ texts: string[]; chunks: LineChunk[]; textBytes: number }> {
  const chunker = new LineChunker(file, 1 << 16); // small chunks keep every thread busy to the end
  const chunks: LineChunk[] = [];
  for await (const data of readDecompressed(file)) chunks.push(...chunker.push(data));
  chunks.push(...chunker.end());
  const texts = chunks.flatMap((c) => parseLines(c).records.map((r) => r.text));
  if (texts.length === 0) throw new MambalabError(`bench tokenize: ${file} holds no documents`);
  return { texts, chunks, textBytes: texts.reduce((n, t) => n + Buffer.byteLength(t), 0) };
}

/**
 * Wall-clock MB/s, and MB per CPU-second of this process (all its threads: workers, Rust's
 * pool, GC): on a machine shared with other jobs the second says what the work costs, the
 * first what it got.
 */
async function timePasses(passes: number, textBytes: number, run: () => Promise<number> | number): Promise<{ mbPerS: number[]; mbPerCpuS: number[]; tokens: number }> {
  const mbPerS: number[] = [];
  const mbPerCpuS: number[] = [];
  let tokens = 0;
  for (let p = 0; p < passes; p++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    tokens = await run();
    const wall = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    mbPerS.push(round(textBytes / MB / wall));
    mbPerCpuS.push(round(textBytes / MB / ((used.user + used.system) / 1e6)));
  }
  return { mbPerS, mbPerCpuS, tokens };
}

function round(x: number): number {
  return Number(x.toFixed(2));
}

interface HfTokenizer {
  encodeBatch(texts: string[]): Promise<{ getIds(): number[] }[]>;
}

/** Hugging Face `tokenizers` (a dev dependency here): absent from a user's install, then left out. */
function hfTokenizers(): { fromFile(f: string): HfTokenizer; fromString(s: string): HfTokenizer } | undefined {
  try {
    return (createRequire(import.meta.url)('tokenizers') as { Tokenizer: { fromFile(f: string): HfTokenizer; fromString(s: string): HfTokenizer } }).Tokenizer;
  } catch {
    return undefined;
  }
}

async function timeTokenizers(options: TokenizeBenchOptions) {
  const { passes, threads, log } = options;
  const loadBefore = loadavg();
  const { texts, chunks, textBytes } = await loadCorpus(options.corpus);
  const names: TokenizerName[] = ['gpt2'];
  if (options.neoxTokenizerFile && existsSync(options.neoxTokenizerFile)) names.push('neox');
  const hf = hfTokenizers();
  const timings: TokenizerTiming[] = [];
  const record = (t: TokenizerTiming) => {
    timings.push(t);
    const list = (xs: number[]) => xs.map((x) => x.toFixed(1).padStart(5)).join(' ');
    log(`${t.tokenizer.padEnd(5)} ${t.implementation.padEnd(48)} ${list(t.mbPerS)} MB/s   ${list(t.mbPerCpuS)} MB/CPU-s  (${t.tokens} tokens)`);
  };

  for (const name of names) {
    const file = name === 'neox' ? options.neoxTokenizerFile : undefined;
    const pool = new TokenizerPool({ tokenizer: name, tokenizerFile: file, workers: threads });
    try {
      // First a chunk of made-up words per thread: loading the vocabulary and compiling the
      // hot loops are not timed, and the word caches stay cold for the corpus.
      const warmUp = Buffer.from(jitWarmUpTexts().map((text) => JSON.stringify({ text }) + '\n').join(''));
      await Promise.all(Array.from({ length: threads }, () => pool.run({ firstLine: 1, bytes: warmUp })));
      const ours = await timePasses(passes, textBytes, async () => {
        const results = await Promise.all(chunks.map((c) => pool.run(c)));
        return results.reduce((n, r) => n + r.tokens.length - r.lengths.length, 0);
      });
      record({ tokenizer: name, kind: 'mambalab', implementation: `mambalab BPE, ${threads} worker threads`, threads, ...ours });
    } finally {
      await pool.close();
    }
    const warmUp = loadTokenizer(name, { file }); // another instance: its cache is not the timed one's
    for (const text of jitWarmUpTexts()) warmUp.encode(text);
    const tokenizer = loadTokenizer(name, { file });
    const single = await timePasses(passes, textBytes, () => {
      const out = new TokenBuffer(1 << 20);
      for (const t of texts) tokenizer.encodeInto(t, out);
      return out.length;
    });
    record({ tokenizer: name, kind: 'mambalab-1-thread', implementation: 'mambalab BPE, 1 thread', threads: 1, ...single });
    if (hf) {
      const model = name === 'gpt2' ? hf.fromString(gpt2TokenizerJson()) : hf.fromFile(file!);
      let encodings: { getIds(): number[] }[] = [];
      const timed = await timePasses(passes, textBytes, async () => {
        encodings = await model.encodeBatch(texts);
        return 0;
      });
      // Counted outside the timing: reading ids back through napi is not tokenizing.
      const tokens = encodings.reduce((n, e) => n + e.getIds().length, 0);
      record({ tokenizer: name, kind: 'hf-tokenizers', implementation: `HF tokenizers encodeBatch (Rust, ${availableParallelism()} threads)`, threads: availableParallelism(), ...timed, tokens });
    }
    if (name === 'gpt2') {
      for (const text of jitWarmUpTexts()) gpt2Reference(text);
      const reference = await timePasses(passes, textBytes, () => texts.reduce((n, t) => n + gpt2Reference(t).length, 0));
      record({ tokenizer: name, kind: 'gpt-tokenizer', implementation: 'gpt-tokenizer 4.0.0, 1 thread', threads: 1, ...reference });
    }
  }

  // Pass 1 has cold caches; of the later passes, each implementation's best is the one least
  // disturbed by other jobs on the machine.
  const speed = (name: TokenizerName, kind: TokenizerTiming['kind'], key: 'mbPerS' | 'mbPerCpuS', warm: boolean) => {
    const xs = timings.find((t) => t.tokenizer === name && t.kind === kind)?.[key];
    return xs && (warm ? (passes > 1 ? Math.max(...xs.slice(1)) : undefined) : xs[0]);
  };
  const compare = (name: TokenizerName, key: 'mbPerS' | 'mbPerCpuS', warm: boolean) => {
    const ours = speed(name, 'mambalab', key, warm);
    const theirs = speed(name, 'hf-tokenizers', key, warm);
    return { mambalab: ours ?? null, hfTokenizers: theirs ?? null, ratio: ratio(ours, theirs) };
  };
  const summary = Object.fromEntries(
    names.map((name) => [
      name,
      { coldWall: compare(name, 'mbPerS', false), coldCpu: compare(name, 'mbPerCpuS', false), warmWall: compare(name, 'mbPerS', true), warmCpu: compare(name, 'mbPerCpuS', true) },
    ]),
  );
  return {
    bench: 'tokenize',
    measured: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}`, loadAverageBefore: loadBefore, loadAverageAfter: loadavg() },
    corpus: { file: options.corpus, documents: texts.length, textMB: Number((textBytes / MB).toFixed(3)) },
    passes,
    timings,
    summary,
    targets: { gpt2MbPerS: 10, vsTokenizers: 2 },
    ...(!options.sampler ? {} : { sampler: await benchSampler(options.corpus, log) }),
  };
}

/** Text of made-up words (seeded): it runs every path of the tokenizers, yet shares few words with real text. */
function jitWarmUpTexts(): string[] {
  let state = 12345;
  const next = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const word = () => {
    let w = '';
    for (let i = 2 + next(9); i > 0; i--) w += letters[next(26)];
    const r = next(20);
    return r === 0 ? w.toUpperCase() : r === 1 ? `${w}${next(1000)}` : r === 2 ? `${w},` : r === 3 ? `${w}.\n` : w;
  };
  return Array.from({ length: 16 }, () => Array.from({ length: 600 }, word).join(' '));
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a !== undefined && b !== undefined && b > 0 ? Number((a / b).toFixed(2)) : null;
}
