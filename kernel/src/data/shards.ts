// Token shards as Arrow IPC files: one row per document, column `tokens` a List<Uint16> (the
// documents' ids, each ending in end-of-text; the list offsets are the document offsets), an
// optional dictionary column `set` (SlimPajama's redpajama_set_name), and the dataset's
// provenance in the schema metadata. pyarrow reads them as they are:
//   pyarrow.ipc.open_file('shard-00000.arrow').read_all()
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Data, DataType, Dictionary, Field, Int32, List, makeData, RecordBatch, Schema, Struct, Table, tableToIPC, Uint16, Utf8, vectorFromArray } from 'apache-arrow';

import { MambalabError } from '../errors.js';
import { readArrowFile } from './arrow-file.js';

export interface ShardContents {
  /** Every document's ids, one after another. */
  tokens: Uint16Array;
  /** documents + 1 offsets into tokens: document i is tokens[offsets[i], offsets[i + 1]). */
  offsets: Int32Array;
  /** Each document's set name, when the source has them. */
  sets?: (string | null)[];
}

const TOKENS_TYPE = new List(new Field('item', new Uint16(), false));
const SET_TYPE = new Dictionary(new Utf8(), new Int32());

/** Writes a shard (to a temporary name first, so a crash never leaves half a shard under the real one). */
export function writeShard(path: string, shard: ShardContents, metadata: Record<string, string>): void {
  const documents = shard.offsets.length - 1;
  const child = makeData({ type: new Uint16(), length: shard.tokens.length, nullCount: 0, data: shard.tokens });
  const tokens = makeData({ type: TOKENS_TYPE, length: documents, nullCount: 0, valueOffsets: shard.offsets, child });
  const fields: Field[] = [new Field('tokens', TOKENS_TYPE, false)];
  const columns: Data[] = [tokens];
  if (shard.sets) {
    fields.push(new Field('set', SET_TYPE, true));
    columns.push(vectorFromArray(shard.sets, SET_TYPE).data[0]!);
  }
  const schema = new Schema(fields, new Map(Object.entries(metadata)));
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: documents, nullCount: 0, children: columns }));
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, tableToIPC(new Table([batch]), 'file'));
  renameSync(temporary, path);
}

export interface Shard extends ShardContents {
  metadata: Map<string, string>;
}

/**
 * Reads a shard into a Buffer, which Node allocates outside the V8 heap, and returns views
 * into it: the tokens are never copied. (Node has no mmap; this is the nearest it gets.)
 */
export function readShard(path: string, options: { sets?: boolean } = {}): Shard {
  const table = readArrowFile(path, (why) => new MambalabError(`${path}: not a readable Arrow IPC shard (${why})`));
  const column = table.getChild('tokens');
  // Type checks by type id: instanceof fails when the ESM and CommonJS builds of apache-arrow meet.
  const type = column?.type;
  const isUint16List = DataType.isList(type) && DataType.isInt(type.valueType) && type.valueType.bitWidth === 16 && !type.valueType.isSigned;
  if (!column || !isUint16List || column.data.length !== 1) {
    throw new MambalabError(`${path}: expected one record batch with a 'tokens' List<Uint16> column, found ${table.schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ')}`);
  }
  const data = column.data[0]!;
  const offsets = data.valueOffsets.subarray(0, data.length + 1) as Int32Array;
  const child = data.children[0]!;
  const values = (child.values as Uint16Array).subarray(0, child.length); // the buffer may hold padding
  const damaged = offsetsProblem(offsets, data.length, values.length) ?? (data.nullCount > 0 ? `${data.nullCount} of its documents are null` : undefined);
  if (damaged) throw new MambalabError(`${path}: the shard is damaged: ${damaged}; prepare the dataset again`);
  const tokens = values.subarray(0, offsets[data.length]);
  // Set names become JS strings, one per document: only on request.
  const setColumn = options.sets ? table.getChild('set') : null;
  const setType = setColumn?.type;
  if (setColumn && !DataType.isUtf8(setType) && !(DataType.isDictionary(setType) && DataType.isUtf8(setType.dictionary))) {
    throw new MambalabError(`${path}: its 'set' column is ${setType}, not set names (strings)`);
  }
  const sets = setColumn ? (setColumn.toArray() as (string | null)[]) : undefined;
  return { tokens, offsets, sets, metadata: table.schema.metadata };
}

/** What is wrong with a list column's offsets: document i must be values[offsets[i], offsets[i + 1]), in order, from 0. */
function offsetsProblem(offsets: Int32Array, documents: number, values: number): string | undefined {
  if (offsets.length !== documents + 1) return `${documents} documents but ${offsets.length} offsets`;
  if (offsets[0] !== 0) return `its first document starts at token ${offsets[0]}, not 0`;
  for (let i = 1; i <= documents; i++) {
    if (offsets[i]! < offsets[i - 1]!) return `document ${i - 1} ends (at token ${offsets[i]}) before it starts (at ${offsets[i - 1]})`;
  }
  if (offsets[documents]! > values) return `its documents end at token ${offsets[documents]}, past the ${values} tokens it holds`;
  return undefined;
}

/** Gathers tokenized documents in order and writes a shard whenever one holds `shardTokens`. */
export class ShardWriter {
  readonly written: { file: string; documents: number; tokens: number }[] = [];
  private parts: Uint16Array[] = [];
  private lengths: number[] = [];
  private sets: (string | null)[] = [];
  private tokens = 0;

  constructor(
    private readonly dir: string,
    private readonly shardTokens: number,
    private readonly metadata: Record<string, string>,
  ) {}

  /** Adds documents: their ids one after another, and each one's length (and set). */
  add(tokens: Uint16Array, lengths: Uint32Array, sets: (string | null)[] | null): void {
    let spanStart = 0;
    let at = 0;
    lengths.forEach((n, d) => {
      // Documents never straddle shards: a full shard is closed before the next one starts.
      if (this.tokens >= this.shardTokens) {
        if (at > spanStart) this.parts.push(tokens.subarray(spanStart, at));
        spanStart = at;
        this.flush();
      }
      this.lengths.push(n);
      this.sets.push(sets?.[d] ?? null);
      this.tokens += n;
      at += n;
    });
    if (at > spanStart) this.parts.push(tokens.subarray(spanStart, at));
  }

  /** Writes the last shard; returns every shard written. */
  finish(): { file: string; documents: number; tokens: number }[] {
    if (this.lengths.length > 0) this.flush();
    return this.written;
  }

  private flush(): void {
    const tokens = new Uint16Array(this.tokens);
    let at = 0;
    for (const p of this.parts) {
      tokens.set(p, at);
      at += p.length;
    }
    const offsets = new Int32Array(this.lengths.length + 1);
    this.lengths.forEach((n, i) => (offsets[i + 1] = offsets[i]! + n));
    const file = `shard-${String(this.written.length).padStart(5, '0')}.arrow`;
    const documents = this.lengths.length;
    const sets = this.sets.some((s) => s !== null) ? this.sets : undefined;
    writeShard(join(this.dir, file), { tokens, offsets, sets }, { ...this.metadata, shard: file, documents: String(documents), tokens: String(this.tokens) });
    this.written.push({ file, documents, tokens: this.tokens });
    this.parts = [];
    this.lengths = [];
    this.sets = [];
    this.tokens = 0;
  }
}
