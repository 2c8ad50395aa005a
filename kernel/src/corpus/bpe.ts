// Byte-level BPE (GPT-2's algorithm, shared by GPT-NeoX): each pre-token's UTF-8 bytes start as
// one token each, then the adjacent pair with the lowest merge rank is merged until none is
// left. Words repeat (Zipf), so each distinct pre-token is encoded once and cached; on web
// text the cache turns the merge loop into one Map lookup per word. (A hash table probed
// in place, without the substring, measured only 3-15% faster: not worth its code.)
import { Pretokenizer } from './pretokenize.js';

/** A growable array of token ids. */
export class TokenBuffer {
  data: Uint16Array;
  length = 0;

  constructor(capacity = 1 << 16) {
    this.data = new Uint16Array(capacity);
  }

  push(id: number): void {
    if (this.length === this.data.length) this.grow(1);
    this.data[this.length++] = id;
  }

  pushAll(ids: readonly number[]): void {
    if (this.length + ids.length > this.data.length) this.grow(ids.length);
    for (let i = 0; i < ids.length; i++) this.data[this.length + i] = ids[i]!;
    this.length += ids.length;
  }

  /** The ids so far, copied out. */
  toArray(): Uint16Array {
    return this.data.slice(0, this.length);
  }

  private grow(atLeast: number): void {
    const next = new Uint16Array(Math.max(this.data.length * 2, this.length + atLeast));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
}

export interface BpeVocabulary {
  /** The bytes each token id stands for (its decoding). */
  tokenBytes: Uint8Array[];
  /** The token id of each single byte. */
  byteIds: Int32Array;
  /** Merges in priority order, as [left id, right id, merged id] triples. */
  merges: Int32Array;
}

// Distinct pre-tokens kept before the cache starts over: web text's common words come right back.
const CACHE_LIMIT = 200_000;
const EMPTY = 0xffffffff;

export class BytePairEncoder {
  /** Open-addressing table from pair key (left × 65536 + right) to merge rank. */
  private readonly pairKeys: Uint32Array;
  private readonly pairRanks: Int32Array;
  private readonly mergedIds: Int32Array;
  private readonly mask: number;
  private readonly cache = new Map<string, number | number[]>();
  private readonly utf8 = new TextEncoder();
  private scratch = new Uint8Array(256);

  constructor(
    private readonly vocab: BpeVocabulary,
    private readonly pretokenizer: Pretokenizer,
  ) {
    const count = vocab.merges.length / 3;
    let size = 1;
    while (size < count * 2.5) size <<= 1;
    this.mask = size - 1;
    this.pairKeys = new Uint32Array(size).fill(EMPTY);
    this.pairRanks = new Int32Array(size);
    this.mergedIds = new Int32Array(count);
    for (let rank = 0; rank < count; rank++) {
      const key = vocab.merges[3 * rank]! * 65536 + vocab.merges[3 * rank + 1]!;
      let slot = this.slot(key);
      while (this.pairKeys[slot] !== EMPTY && this.pairKeys[slot] !== key) slot = (slot + 1) & this.mask;
      // A pair listed twice keeps its first (best) rank, as Hugging Face's BPE does.
      if (this.pairKeys[slot] === key) continue;
      this.pairKeys[slot] = key;
      this.pairRanks[slot] = rank;
      this.mergedIds[rank] = vocab.merges[3 * rank + 2]!;
    }
  }

  /** Appends the tokens of text[start, end) (no special tokens) to out. */
  encodeInto(text: string, start: number, end: number, out: TokenBuffer): void {
    const cache = this.cache;
    for (let i = start; i < end; ) {
      const j = this.pretokenizer.next(text, i, end);
      const word = text.slice(i, j);
      let ids = cache.get(word);
      if (ids === undefined) ids = this.remember(word);
      if (typeof ids === 'number') out.push(ids);
      else out.pushAll(ids);
      i = j;
    }
  }

  /** The text a sequence of token ids stands for (invalid UTF-8 shown as U+FFFD). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let n = 0;
    for (let i = 0; i < ids.length; i++) n += this.vocab.tokenBytes[ids[i]!]?.length ?? 0;
    const bytes = new Uint8Array(n);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.vocab.tokenBytes[ids[i]!];
      if (!b) throw new RangeError(`token id ${ids[i]} is outside the vocabulary (${this.vocab.tokenBytes.length} tokens)`);
      bytes.set(b, at);
      at += b.length;
    }
    return bytes;
  }

  private slot(key: number): number {
    return (Math.imul(key, 0x9e3779b1) >>> 13) & this.mask;
  }

  private rankOf(left: number, right: number): number {
    const key = left * 65536 + right;
    for (let slot = this.slot(key); ; slot = (slot + 1) & this.mask) {
      const k = this.pairKeys[slot]!;
      if (k === key) return this.pairRanks[slot]!;
      if (k === EMPTY) return -1;
    }
  }

  private remember(word: string): number | number[] {
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    const ids = this.merge(word);
    // Small JS arrays: a typed array per word costs more to allocate than it saves.
    const value = ids.length === 1 ? ids[0]! : ids;
    this.cache.set(word, value);
    return value;
  }

  private merge(word: string): number[] {
    if (this.scratch.length < word.length * 3) this.scratch = new Uint8Array(word.length * 3);
    const n = this.utf8.encodeInto(word, this.scratch).written;
    const ids: number[] = new Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.vocab.byteIds[this.scratch[i]!]!;
    while (ids.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const rank = this.rankOf(ids[i]!, ids[i + 1]!);
        if (rank >= 0 && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      ids.splice(best, 2, this.mergedIds[bestRank]!);
    }
    return ids;
  }
}
