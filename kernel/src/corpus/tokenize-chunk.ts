// One unit of tokenizing: parse a chunk of JSON lines and tokenize its documents, each
// followed by end-of-text. `prepare` runs it in worker threads, loadTextCorpus on its own.
import { TokenBuffer } from './bpe.js';
import { parseLines, type BadRecord, type LineChunk } from './lines.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizedChunk {
  tokens: Uint16Array;
  /** Tokens of each kept document, its end-of-text included. */
  lengths: Uint32Array;
  /** Each kept document's SlimPajama set, or null when no record of the chunk had one. */
  sets: (string | null)[] | null;
  /** UTF-8 bytes of the kept documents' text. */
  textBytes: number;
  bad: BadRecord[];
  blank: number;
  /** Documents left out by the set filter. */
  filtered: number;
}

export function tokenizeChunk(tokenizer: Tokenizer, chunk: LineChunk, sets: ReadonlySet<string> | null): TokenizedChunk {
  const parsed = parseLines(chunk);
  const out = new TokenBuffer(Math.max(1024, chunk.bytes.length >> 2));
  const lengths: number[] = [];
  const setNames: (string | null)[] = [];
  let textBytes = 0;
  let filtered = 0;
  for (const record of parsed.records) {
    if (sets && (record.set === null || !sets.has(record.set))) {
      filtered++;
      continue;
    }
    const before = out.length;
    tokenizer.encodeInto(record.text, out);
    out.push(tokenizer.endOfText);
    lengths.push(out.length - before);
    setNames.push(record.set);
    textBytes += Buffer.byteLength(record.text);
  }
  return {
    tokens: out.toArray(),
    lengths: Uint32Array.from(lengths),
    sets: setNames.some((s) => s !== null) ? setNames : null,
    textBytes,
    bad: parsed.bad,
    blank: parsed.blank,
    filtered,
  };
}
