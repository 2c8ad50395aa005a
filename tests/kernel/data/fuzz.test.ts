// Fuzzing the readers of prepared datasets: token shards (readShard) and whole dataset folders
// (openDataset, and `mambalab data info`), from datasets `prepare` made of real C4 documents.
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Field, Float64, Int32, List, makeData, Uint16 } from 'apache-arrow';

import { c4SampleRecords, slimPajamaRecords, writeC4Fixture, writeSlimPajamaFixture } from '../../../datasets/fixtures.js';
import { data as dataCommand } from '../../../kernel/src/cli/data.js';
import { prepare } from '../../../kernel/src/corpus/prepare.js';
import { openDataset, type Dataset } from '../../../kernel/src/data/dataset.js';
import { MANIFEST_FILE } from '../../../kernel/src/data/manifest.js';
import { readShard, type Shard } from '../../../kernel/src/data/shards.js';
import { arrowFile, TOKENS } from './helpers.js';
import { fuzzTargets, judgeRead, type FuzzTarget } from '../../support/fuzz.js';
import { arrowLengthFields, mutateBytes, mutateJson, pick, writeMutated, type Mutation, type Random } from '../../support/mutate.js';

let prepared: Promise<string[]> | undefined;

/** Two prepared datasets of real C4 text, several shards each: plain C4, and SlimPajama's layout (with a set column); made once, in the first target's folder. */
function preparedDatasets(dir: string): Promise<string[]> {
  prepared ??= prepareDatasets(dir);
  return prepared;
}

async function prepareDatasets(dir: string): Promise<string[]> {
  const records = c4SampleRecords().slice(0, 24);
  const c4 = join(dir, 'c4.json.gz');
  const slimPajama = join(dir, 'slimpajama.jsonl.zst');
  writeC4Fixture(c4, records);
  await writeSlimPajamaFixture(slimPajama, slimPajamaRecords(records));
  const out = [join(dir, 'c4'), join(dir, 'slimpajama')];
  await prepare({ inputs: [c4], out: out[0]!, tokenizer: 'gpt2', workers: 1, shardTokens: 4000 });
  await prepare({ inputs: [slimPajama], out: out[1]!, tokenizer: 'gpt2', workers: 1, shardTokens: 4000 });
  return out;
}

/** A valid Arrow IPC file that is not a valid shard: the wrong types, offsets, nulls or batches. */
function wrongShard(rand: Random, shard: Shard): Mutation {
  const documents = shard.offsets.length - 1;
  const list = (offsets: Int32Array, extra: { nullCount?: number; nullBitmap?: Uint8Array } = {}) =>
    makeData({ type: TOKENS, length: offsets.length - 1, nullCount: 0, valueOffsets: offsets, child: makeData({ type: new Uint16(), length: shard.tokens.length, data: shard.tokens }), ...extra });
  const offsets = Int32Array.from(shard.offsets);
  const at = 1 + rand.int(documents);
  const kind = pick(rand, ['int32 tokens', 'flat tokens', 'no tokens column', 'two batches', 'decreasing offsets', 'offsets past the tokens', 'null documents', 'set of numbers', 'float tokens']);
  switch (kind) {
    case 'int32 tokens': {
      const child = makeData({ type: new Int32(), length: shard.tokens.length, data: Int32Array.from(shard.tokens) });
      return { what: kind, value: arrowFile({ tokens: makeData({ type: new List(new Field('item', new Int32(), false)), length: documents, nullCount: 0, valueOffsets: offsets, child }) }) };
    }
    case 'float tokens':
      return { what: kind, value: arrowFile({ tokens: makeData({ type: new Float64(), length: documents, data: new Float64Array(documents) }) }) };
    case 'flat tokens':
      return { what: kind, value: arrowFile({ tokens: makeData({ type: new Uint16(), length: shard.tokens.length, data: shard.tokens }) }) };
    case 'no tokens column':
      return { what: kind, value: arrowFile({ ids: list(offsets) }) };
    case 'two batches':
      return { what: kind, value: arrowFile({ tokens: list(offsets) }, 2) };
    case 'decreasing offsets':
      offsets[at] = offsets[at - 1]! - 1 - rand.int(50);
      return { what: `offset ${at} below offset ${at - 1}`, value: arrowFile({ tokens: list(offsets) }) };
    case 'offsets past the tokens':
      offsets[documents] = shard.tokens.length + 1 + rand.int(1000);
      return { what: kind, value: arrowFile({ tokens: list(offsets) }) };
    case 'null documents': {
      const valid = new Uint8Array(Math.ceil(documents / 8)).fill(0xff);
      valid[0] = 0xfe;
      return { what: kind, value: arrowFile({ tokens: list(offsets, { nullCount: 1, nullBitmap: valid }) }) };
    }
    default: {
      const set = makeData({ type: new Int32(), length: documents, data: new Int32Array(documents) });
      return { what: kind, value: arrowFile({ tokens: list(offsets), set }) };
    }
  }
}

/** Damage to a shard: its bytes (and Arrow's length fields), or a valid Arrow file of the wrong content. */
function mutateShard(rand: Random, bytes: Buffer, shard: Shard): Mutation {
  return rand.next() < 0.75 ? mutateBytes(rand, bytes, arrowLengthFields(bytes)) : wrongShard(rand, shard);
}

function shardProblem(shard: Shard, withSets: boolean): string | undefined {
  const { offsets, tokens, sets } = shard;
  if (offsets[0] !== 0 || offsets.at(-1) !== tokens.length) return `offsets run from ${offsets[0]} to ${offsets.at(-1)} over ${tokens.length} tokens`;
  for (let i = 1; i < offsets.length; i++) if (offsets[i]! < offsets[i - 1]!) return `offset ${i} (${offsets[i]}) is below offset ${i - 1} (${offsets[i - 1]})`;
  if (withSets && sets && (sets.length !== offsets.length - 1 || !sets.every((s) => s === null || typeof s === 'string'))) return `the set column is ${JSON.stringify(sets).slice(0, 80)}`;
  return undefined;
}

/** A dataset that opened must be usable: every document a view, batches of ids inside the vocabulary. */
function datasetProblem(dataset: Dataset): string | undefined {
  const { documents, tokens } = dataset.info();
  let counted = 0;
  for (let d = 0; d < documents; d++) counted += dataset.document(d).length;
  if (counted !== tokens) return `its documents hold ${counted} tokens, its info says ${tokens}`;
  for (const split of ['train', 'validation'] as const) {
    const { tokens: ids } = dataset.sampler(split, { batchSize: 2, seqLen: 4, seed: 1 }).next();
    const outside = ids.find((id) => id >= dataset.vocabSize);
    if (outside !== undefined) return `a ${split} batch holds token id ${outside}, outside the vocabulary of ${dataset.vocabSize}`;
  }
  return undefined;
}

const shards: FuzzTarget = {
  name: 'readShard',
  cases: 1000,
  async setup(dir) {
    const datasets = await preparedDatasets(dir);
    const files = datasets.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.arrow')).map((f) => join(d, f)));
    const originals = files.map((file) => ({ bytes: readFileSync(file), shard: readShard(file, { sets: true }) }));
    return (rand, caseDir) => {
      const { bytes, shard } = pick(rand, originals);
      const file = join(caseDir, 'shard-00000.arrow');
      const what = writeMutated(rand, file, () => mutateShard(rand, bytes, shard));
      const sets = rand.next() < 0.5;
      return judgeRead(what, [file], () => readShard(file, { sets }), (read) => shardProblem(read, sets));
    };
  },
};

const datasets: FuzzTarget = {
  name: 'openDataset',
  cases: 500,
  async setup(dir) {
    const originals = await preparedDatasets(dir);
    return async (rand, caseDir) => {
      const dataset = join(caseDir, 'dataset');
      cpSync(pick(rand, originals), dataset, { recursive: true });
      const manifestFile = join(dataset, MANIFEST_FILE);
      const shardFiles = readdirSync(dataset).filter((f) => f.endsWith('.arrow'));
      const target = pick(rand, ['manifest', 'manifest', 'shard', 'shard', 'directory']);
      let file: string;
      let what: string;
      if (target === 'manifest') {
        file = manifestFile;
        const text = readFileSync(file, 'utf8');
        what = writeMutated(rand, file, () => mutateJson(rand, JSON.parse(text), text));
      } else if (target === 'shard') {
        file = join(dataset, pick(rand, shardFiles));
        const [bytes, shard] = [readFileSync(file), readShard(file, { sets: true })];
        what = writeMutated(rand, file, () => mutateShard(rand, bytes, shard));
      } else {
        file = dataset;
        what = writeMutated(rand, file, () => ({ what: 'a file in place of the folder', value: Buffer.from('{}') }));
      }
      return judgeRead(`${target}: ${what}`, [file], async () => {
        await quietly(() => dataCommand(['info', dataset]));
        return openDataset(dataset);
      }, datasetProblem);
    };
  },
};

/** Runs the CLI's `data info` without its output (the child's stdout goes to the parent). */
async function quietly(run: () => Promise<void>): Promise<void> {
  const write = process.stdout.write;
  process.stdout.write = () => true;
  try {
    await run();
  } finally {
    process.stdout.write = write;
  }
}

fuzzTargets(import.meta.filename, [shards, datasets]);

