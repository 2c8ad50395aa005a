// Reads JSON-lines text corpora (C4's .json.gz, plain .jsonl) and tokenizes them with
// GPT-2's BPE, documents joined by <|endoftext|>. The full pipeline (Arrow shards, NeoX,
// SlimPajama) lives beside this; this path reads raw files directly.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { encode } from 'gpt-tokenizer/encoding/gpt2';

import { InMemoryTokens } from '../data/source.js';
import { MambalabError } from '../errors.js';

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_END_OF_TEXT = 50256;

const TEXT_FILE = /\.(json|jsonl)(\.gz)?$/;

/** The text files a path names: itself, or the .json/.jsonl(.gz) files in a directory, sorted. */
export function textFiles(path: string): string[] {
  let info;
  try {
    info = statSync(path);
  } catch {
    throw new MambalabError(`data: ${path} does not exist`);
  }
  if (info.isFile()) return [path];
  const files = readdirSync(path)
    .filter((f) => TEXT_FILE.test(f))
    .sort()
    .map((f) => join(path, f));
  if (files.length === 0) throw new MambalabError(`data: ${path} holds no .json, .jsonl or .json.gz files`);
  return files;
}

/** The "text" field of every line of a JSON-lines file (gzip detected by its magic bytes). */
export function readTexts(file: string): string[] {
  let bytes: Buffer = readFileSync(file);
  if (bytes.length === 0) throw new MambalabError(`data: ${file} is empty`);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new MambalabError(`data: ${file} is not valid gzip (${(e as Error).message})`);
    }
  }
  const texts: string[] = [];
  const lines = bytes.toString('utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new MambalabError(`data: ${file} line ${i + 1} is not valid JSON: ${line.slice(0, 80)}`);
    }
    const text = (record as { text?: unknown }).text;
    if (typeof text !== 'string') throw new MambalabError(`data: ${file} line ${i + 1} has no "text" string field`);
    texts.push(text);
  });
  if (texts.length === 0) throw new MambalabError(`data: ${file} holds no documents`);
  return texts;
}

/**
 * Tokenizes the documents of a path into train and validation streams: every
 * `validationEvery`-th document goes to validation, so both splits span the corpus.
 */
export function loadTextCorpus(path: string, options: { validationEvery?: number } = {}): InMemoryTokens {
  const every = options.validationEvery ?? 20;
  const texts = textFiles(path).flatMap(readTexts);
  const train: number[][] = [];
  const validation: number[][] = [];
  texts.forEach((text, i) => {
    const ids = encode(text);
    ids.push(GPT2_END_OF_TEXT);
    (texts.length > 1 && i % every === every - 1 ? validation : train).push(ids);
  });
  if (validation.length === 0) validation.push(train[train.length - 1]!);
  const join = (docs: number[][]) => {
    const out = new Uint16Array(docs.reduce((n, d) => n + d.length, 0));
    let at = 0;
    for (const d of docs) {
      out.set(d, at);
      at += d.length;
    }
    return out;
  };
  return new InMemoryTokens(`${path} (GPT-2 tokens)`, GPT2_VOCAB_SIZE, {
    train: { tokens: join(train), documents: train.length },
    validation: { tokens: join(validation), documents: validation.length },
  });
}
