// Fuzzing the readers of raw corpus files (JSON lines, plain, .gz and .zst): decompression
// streamed and whole, loadTextCorpus, and prepare, from real C4 documents.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { compress as zstdCompress } from 'zstd-napi';

import { c4Lines, c4SampleRecords, zstdLargeWindow } from '../../../datasets/fixtures.js';
import { readDecompressed, readDecompressedSync } from '../../../kernel/src/corpus/decompress.js';
import { prepare } from '../../../kernel/src/corpus/prepare.js';
import { loadTextCorpus } from '../../../kernel/src/corpus/text.js';
import { MambalabError } from '../../../kernel/src/errors.js';
import { fuzzTargets, judgeRead, type FuzzTarget } from '../../support/fuzz.js';
import { mutateBytes, mutateJson, pick, writeMutated, type LengthField, type Mutation, type Random } from '../../support/mutate.js';

interface CorpusFile {
  name: string;
  /** The JSON lines, uncompressed. */
  lines: string;
  /** How the file stores them. */
  encode: (lines: Buffer) => Buffer | Promise<Buffer>;
  /** Length fields of the encoded bytes worth setting to absurd values. */
  fields: (bytes: Buffer) => LengthField[];
  /** A quick way to store damaged text in the same format (its 1 GiB window would cost each case a second). */
  reencode?: (lines: Buffer) => Buffer;
}

const GZIP_TRAILER = (bytes: Buffer): LengthField[] => [
  { name: 'the gzip CRC', offset: bytes.length - 8, bytes: 4 },
  { name: 'the gzip size', offset: bytes.length - 4, bytes: 4 },
];

/** C4's layouts: gzip (one member, and two after each other), zstd (streamed with C4's 1 GiB window, and one frame with its size), plain. */
function corpusFiles(): CorpusFile[] {
  const records = c4SampleRecords().slice(0, 6);
  const lines = c4Lines(records);
  const half = c4Lines(records.slice(0, 3));
  return [
    { name: 'c4.json.gz', lines, encode: (b) => gzipSync(b), fields: GZIP_TRAILER },
    { name: 'two-members.json.gz', lines, encode: (b) => Buffer.concat([gzipSync(b.subarray(0, half.length)), gzipSync(b.subarray(half.length))]), fields: GZIP_TRAILER },
    { name: 'slimpajama.jsonl.zst', lines, encode: (b) => zstdLargeWindow(b), fields: () => [], reencode: (b) => zstdCompress(b) },
    { name: 'sized.jsonl.zst', lines, encode: (b) => zstdCompress(b), fields: () => [] },
    { name: 'plain.jsonl', lines, encode: (b) => b, fields: () => [] },
  ];
}

/**
 * Damage to a corpus file: to its stored bytes, or to its text before it is stored (so that
 * bad lines reach the parser through intact compression): a line of the wrong JSON shape,
 * bytes that are not UTF-8, or damaged text.
 */
async function mutateCorpus(rand: Random, file: CorpusFile, stored: Buffer): Promise<Mutation> {
  if (rand.next() < 0.5) return mutateBytes(rand, stored, file.fields(stored));
  const encode = file.reencode ?? file.encode;
  if (rand.next() < 0.4) {
    const text = mutateBytes(rand, Buffer.from(file.lines));
    return { what: `the text: ${text.what}`, value: await encode(text.value) };
  }
  const lines = file.lines.split('\n');
  const at = rand.int(lines.length - 1);
  const line = mutateJson(rand, JSON.parse(lines[at]!));
  lines[at] = line.value.toString('utf8').replace(/\n/g, ' ');
  return { what: `line ${at + 1}: ${line.what}`, value: await encode(Buffer.from(lines.join('\n'))) };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(run: () => T | Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Both ways of decompressing a file, which must agree: the same bytes, or both refusing it with
 * a MambalabError naming it (the streaming and one-shot decoders word corruption differently).
 */
async function decompressBothWays(file: string): Promise<{ bytes: Buffer; disagreement?: string }> {
  const streamed = await settle(() => collect(readDecompressed(file)));
  const whole = await settle(() => readDecompressedSync(file));
  const said = (s: Settled<Buffer>) => (s.ok ? `${s.value.length} bytes` : String((s.error as Error)?.message ?? s.error));
  if (streamed.ok && whole.ok && streamed.value.equals(whole.value)) return { bytes: streamed.value };
  const wholeRefused = !whole.ok && whole.error instanceof MambalabError && whole.error.message.includes(file);
  if (!streamed.ok && wholeRefused) throw streamed.error;
  return { bytes: Buffer.alloc(0), disagreement: `streamed gave ${said(streamed)}; whole gave ${said(whole)}` };
}

interface Stored {
  file: CorpusFile;
  bytes: Buffer;
}

let encoded: Promise<Stored[]> | undefined;

/** The corpus files as stored, encoded once for all targets (the 1 GiB-window zstd takes most of a second). */
function storedFiles(): Promise<Stored[]> {
  encoded ??= Promise.all(corpusFiles().map(async (file) => ({ file, bytes: await file.encode(Buffer.from(file.lines)) })));
  return encoded;
}

/** A damaged copy of one of the corpus files, in caseDir: its path, and what was done to it. */
async function damagedCorpusFile(rand: Random, caseDir: string): Promise<{ path: string; what: string }> {
  const { file, bytes } = pick(rand, await storedFiles());
  const path = join(caseDir, file.name);
  const mutation = await mutateCorpus(rand, file, bytes);
  return { path, what: writeMutated(rand, path, () => mutation) };
}

const decompression: FuzzTarget = {
  name: 'decompress',
  cases: 500,
  async setup() {
    await storedFiles();
    return async (rand, caseDir) => {
      const { path, what } = await damagedCorpusFile(rand, caseDir);
      return judgeRead(what, [path], () => decompressBothWays(path), (read) => read.disagreement);
    };
  },
};

const textCorpus: FuzzTarget = {
  name: 'loadTextCorpus',
  cases: 200,
  async setup() {
    await storedFiles();
    return async (rand, caseDir) => {
      const { path, what } = await damagedCorpusFile(rand, caseDir);
      return judgeRead(what, [path], () => loadTextCorpus(path), (corpus) => {
        const [train, validation] = [corpus.stats('train'), corpus.stats('validation')];
        if (!(train.tokens > 0 && validation.tokens > 0 && train.documents > 0)) return `splits of ${JSON.stringify({ train, validation })}`;
        return undefined;
      });
    };
  },
};

/** Every file of a folder with its bytes' hash, to see that nothing changed. */
function snapshot(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((name) => `${name} ${createHash('sha256').update(readFileSync(join(dir, name))).digest('hex')}`)
    .join('\n');
}

const preparation: FuzzTarget = {
  name: 'prepare',
  // Each prepare starts a tokenizer thread (most of a second): few cases, for what only prepare
  // does (the staging folder); its readers are the ones fuzzed above.
  cases: 4,
  async setup(dir) {
    const files = await storedFiles();
    // The dataset a failed prepare must leave as it was.
    const previous = join(dir, 'previous');
    const input = join(dir, 'input.jsonl');
    writeFileSync(input, files[0]!.file.lines);
    await prepare({ inputs: [input], out: previous, tokenizer: 'gpt2', workers: 1 });
    return async (rand, caseDir) => {
      const before = snapshot(previous);
      const { path, what } = await damagedCorpusFile(rand, caseDir);
      const result = await judgeRead(what, [path], () => prepare({ inputs: [path], out: previous, tokenizer: 'gpt2', workers: 1 }));
      const leftovers = readdirSync(dir).filter((name) => name.includes('.staging-') || name.includes('.old-'));
      if (leftovers.length > 0) return { ...result, problem: `prepare left ${leftovers.join(', ')} behind` };
      if (!existsSync(previous)) return { ...result, problem: 'the dataset in --out is gone' };
      if (result.outcome === 'refused' && snapshot(previous) !== before) return { ...result, problem: 'a failed prepare changed the dataset already in --out' };
      return result;
    };
  },
};

fuzzTargets(import.meta.filename, [decompression, textCorpus, preparation]);
