// `mambalab data`: fetch corpora, prepare them into token shards, describe a prepared dataset.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { formatDuration } from '@mambalab/contract';

import { fetchC4, fetchNeoxTokenizer, fetchSlimPajama, type FetchProgress, type FetchResult } from '../corpus/fetch.js';
import { dataDir } from '../corpus/paths.js';
import { prepare, type PrepareProgress } from '../corpus/prepare.js';
import { defaultC4Slice } from '../corpus/slice.js';
import { TOKENIZER_NAMES, type TokenizerName } from '../corpus/tokenizer.js';
import { readManifest } from '../data/manifest.js';
import { MambalabError } from '../errors.js';
import { intFlag, parseFlags } from './args.js';
import { bar } from './progress.js';

export const usage = `mambalab data <fetch|prepare|info|c4-slice> [options]

mambalab data fetch c4 [--variant en] --split train|validation --shards 0-3
mambalab data fetch slimpajama --split train|validation|test --chunk 1 --files 0-9
mambalab data fetch neox-tokenizer
  Downloads from the Hugging Face Hub (HF_ENDPOINT moves it; HF_TOKEN is sent when set) into
  the cache ($MAMBALAB_DATA_DIR, default ~/.cache/mambalab; currently ${dataDir()}), resuming
  partial files and checking each file's sha256 from the Hub's listing. Prints the files.
  --dir DIR           where raw files go (default <cache>/raw)
  --jobs N            files at once (default 4)

mambalab data prepare --input <file|dir> [--input ...] --tokenizer gpt2|neox --out DIR
  JSON lines (.json.gz, .jsonl.zst, .jsonl) → Arrow token shards + dataset.json.
  --tokenizer-file F  GPT-NeoX tokenizer.json (default <cache>/tokenizers/gpt-neox-20b/tokenizer.json)
  --sets A,B          keep SlimPajama documents of these redpajama_set_name values only
  --on-bad-record M   error (default): stop at the first bad line; skip: count, report, go on
  --shard-tokens N    tokens per shard (default 67108864)
  --workers N         tokenizer threads (default: one per core)
  --source TEXT, --license TEXT   provenance (C4 and SlimPajama files are recognized)

mambalab data info DIR [--json]
  What a prepared dataset holds; --json prints {"documents","tokens","tokenizer","shards"}.

mambalab data c4-slice [--tokenizer gpt2|neox] [--offline] [--json]
  Makes sure the default C4 slice is prepared (C4 validation shard 0 when online, else the
  offline 1000-document sample) and prints its folder.`;

export async function data(argv: string[]): Promise<void> {
  const [action, ...rest] = argv;
  const actions: Record<string, (argv: string[]) => Promise<void>> = { fetch, prepare: prepareCommand, info, 'c4-slice': c4Slice };
  const run = action ? actions[action] : undefined;
  if (!run) throw new MambalabError(`data: expected one of ${Object.keys(actions).join(', ')}${action ? `, got '${action}'` : ''}\n\n${usage}`);
  await run(rest);
}

/** "0-3,7" → [0, 1, 2, 3, 7]. */
export function parseNumbers(flag: string, spec: string | undefined): number[] {
  if (!spec) throw new MambalabError(`--${flag} is required (e.g. --${flag} 0-3 or --${flag} 0,2,5)`);
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const [from, to] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [NaN, NaN];
    if (!m || to < from || to - from > 100_000) throw new MambalabError(`--${flag}: expected numbers and ranges like 0-3,7; got '${spec}'`);
    for (let n = from; n <= to; n++) out.push(n);
  }
  return [...new Set(out)];
}

function tokenizerFlag(value: string | undefined): TokenizerName {
  if (!TOKENIZER_NAMES.includes(value as TokenizerName)) throw new MambalabError(`--tokenizer: expected ${TOKENIZER_NAMES.join(' or ')}, got '${value}'`);
  return value as TokenizerName;
}

/** A progress line on stderr: redrawn in place on a terminal, a line per tenth otherwise; the final state always shows. */
function progressReporter(): { update: (fraction: number, text: string) => void; end: () => void } {
  const tty = process.stderr.isTTY;
  let lastDraw = 0;
  let lastTenth = -1;
  let pending: string | undefined;
  const draw = (line: string) => process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  return {
    update(fraction, text) {
      const line = `${bar(fraction)} ${text}`;
      const now = Date.now();
      const due = tty ? now - lastDraw >= 100 : Math.floor(fraction * 10) !== lastTenth;
      pending = line;
      if (!due) return;
      lastDraw = now;
      lastTenth = Math.floor(fraction * 10);
      draw(line);
      pending = undefined;
    },
    end() {
      if (pending) draw(pending);
      if (tty && lastDraw > 0) process.stderr.write('\n');
    },
  };
}

const MB = 1e6;

async function fetch(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('data fetch', argv, {
    variant: { type: 'string' },
    split: { type: 'string' },
    shards: { type: 'string' },
    chunk: { type: 'string' },
    files: { type: 'string' },
    dir: { type: 'string' },
    jobs: { type: 'string' },
    out: { type: 'string' },
  });
  const started = Date.now();
  const reporter = progressReporter();
  const onProgress = (p: FetchProgress) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = p.bytesDone / MB / Math.max(seconds, 1e-3);
    const eta = rate > 0 ? (p.bytesTotal - p.bytesDone) / MB / rate : 0;
    reporter.update(
      p.bytesDone / Math.max(1, p.bytesTotal),
      `${p.filesDone}/${p.files} files  ${(p.bytesDone / MB).toFixed(1)}/${(p.bytesTotal / MB).toFixed(1)} MB  ${rate.toFixed(1)} MB/s  ETA ${formatDuration(eta)}`,
    );
  };
  const options = { dir: f.dir, concurrency: intFlag('jobs', f.jobs, 4, 1), onProgress };
  const corpus = positionals[0];
  let result: FetchResult;
  try {
    if (corpus === 'c4') {
      result = await fetchC4({ variant: f.variant, split: f.split ?? '', shards: parseNumbers('shards', f.shards) }, options);
    } else if (corpus === 'slimpajama') {
      result = await fetchSlimPajama({ split: f.split ?? '', chunk: intFlag('chunk', f.chunk, 0, 1), files: parseNumbers('files', f.files) }, options);
    } else if (corpus === 'neox-tokenizer') {
      result = await fetchNeoxTokenizer({ ...options, dest: f.out });
    } else {
      throw new MambalabError(`data fetch: expected c4, slimpajama or neox-tokenizer${corpus ? `, got '${corpus}'` : ''}`);
    }
  } finally {
    reporter.end();
  }
  process.stderr.write(`${result.downloaded} downloaded, ${result.present} already there (verified)\n`);
  process.stdout.write(result.files.join('\n') + '\n');
}

async function prepareCommand(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('data prepare', argv, {
    input: { type: 'string', multiple: true },
    tokenizer: { type: 'string', default: 'gpt2' },
    'tokenizer-file': { type: 'string' },
    out: { type: 'string' },
    sets: { type: 'string' },
    'on-bad-record': { type: 'string', default: 'error' },
    'shard-tokens': { type: 'string' },
    workers: { type: 'string' },
    source: { type: 'string' },
    license: { type: 'string' },
  });
  if (!f.out) throw new MambalabError('data prepare: --out DIR is required');
  const onBadRecord = f['on-bad-record'];
  if (onBadRecord !== 'error' && onBadRecord !== 'skip') throw new MambalabError(`--on-bad-record: expected error or skip, got '${onBadRecord}'`);
  const started = Date.now();
  const reporter = progressReporter();
  const onProgress = (p: PrepareProgress) => {
    const seconds = (Date.now() - started) / 1000;
    const detail = p.phase === 'hash' ? 'sha256 of inputs' : `${p.documents.toLocaleString('en-US')} documents  ${p.tokens.toLocaleString('en-US')} tokens`;
    reporter.update(p.bytesDone / Math.max(1, p.bytesTotal), `${p.phase}: ${(p.bytesDone / MB).toFixed(1)}/${(p.bytesTotal / MB).toFixed(1)} MB  ${detail}  ${formatDuration(seconds)}`);
  };
  let manifest;
  try {
    manifest = await prepare({
      inputs: [...(f.input ?? []), ...positionals],
      out: f.out,
      tokenizer: tokenizerFlag(f.tokenizer),
      tokenizerFile: f['tokenizer-file'],
      sets: f.sets?.split(',').map((s) => s.trim()).filter(Boolean),
      onBadRecord,
      shardTokens: intFlag('shard-tokens', f['shard-tokens'], 1 << 26, 1),
      workers: f.workers === undefined ? undefined : intFlag('workers', f.workers, 1, 1),
      source: f.source,
      license: f.license,
      onProgress,
    });
  } finally {
    reporter.end();
  }
  const seconds = (Date.now() - started) / 1000;
  process.stderr.write(
    `${manifest.documents.toLocaleString('en-US')} documents, ${manifest.tokens.toLocaleString('en-US')} ${manifest.tokenizer} tokens in ${manifest.shards.length} shard(s) ` +
      `from ${(manifest.textBytes / MB).toFixed(1)} MB of text in ${seconds.toFixed(1)} s` +
      (manifest.skipped.count > 0 ? `; skipped ${manifest.skipped.count} bad record(s), e.g. ${manifest.skipped.examples[0]}` : '') +
      (manifest.filtered > 0 ? `; ${manifest.filtered} left out by --sets` : '') +
      '\n',
  );
  process.stdout.write(join(f.out) + '\n');
}

async function info(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('data info', argv, { json: { type: 'boolean', default: false } });
  const dir = positionals[0];
  if (!dir) throw new MambalabError('data info: expected a prepared dataset folder');
  const m = readManifest(dir);
  const missing = m.shards.filter((s) => !existsSync(join(dir, s.file)));
  if (missing.length > 0) throw new MambalabError(`${dir}: dataset.json lists ${missing.map((s) => s.file).join(', ')}, which are missing`);
  if (f.json) {
    process.stdout.write(JSON.stringify({ documents: m.documents, tokens: m.tokens, tokenizer: m.tokenizer, shards: m.shards.length }) + '\n');
    return;
  }
  const lines = [
    `${dir}`,
    `  source     ${m.source}`,
    `  license    ${m.license}`,
    `  tokenizer  ${m.tokenizer} (vocabulary ${m.vocabSize}, end-of-text ${m.endOfText})`,
    `  documents  ${m.documents.toLocaleString('en-US')}`,
    `  tokens     ${m.tokens.toLocaleString('en-US')} (${(m.textBytes / MB).toFixed(1)} MB of text)`,
    `  shards     ${m.shards.length}`,
    ...m.inputs.map((i) => `  input      ${i.path} (${i.documents.toLocaleString('en-US')} documents, sha256 ${i.sha256})`),
    ...Object.entries(m.sets ?? {}).map(([name, s]) => `  set        ${name}: ${s.documents.toLocaleString('en-US')} documents, ${s.tokens.toLocaleString('en-US')} tokens`),
    ...(m.skipped.count > 0 ? [`  skipped    ${m.skipped.count} bad records, e.g. ${m.skipped.examples[0]}`] : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

async function c4Slice(argv: string[]): Promise<void> {
  const { values: f } = parseFlags('data c4-slice', argv, {
    tokenizer: { type: 'string', default: 'gpt2' },
    'tokenizer-file': { type: 'string' },
    offline: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const slice = await defaultC4Slice({ tokenizer: tokenizerFlag(f.tokenizer), tokenizerFile: f['tokenizer-file'], offline: f.offline || undefined });
  process.stdout.write(f.json ? JSON.stringify({ dir: slice.dir, ...slice.info() }) + '\n' : slice.dir + '\n');
}
