// Raw JSON-lines corpora (C4's .json.gz, SlimPajama's .jsonl.zst, plain .jsonl) tokenized into
// memory with GPT-2's BPE, documents joined by <|endoftext|>: `train --data <files>` and
// notebooks that skip `prepare`. The files are found, decompressed, cut into lines, parsed and
// tokenized by the same code as `prepare`'s (inputs.ts, decompress.ts, lines.ts,
// tokenize-chunk.ts), so both take the same inputs and fail with the same errors; only the
// bytes come whole (this call is synchronous) instead of streamed.
import { InMemoryTokens } from '../data/source.js';
import { readDecompressedSync } from './decompress.js';
import { inputFiles, noDocumentsError } from './inputs.js';
import { badRecordError, LineChunker } from './lines.js';
import { tokenizeChunk } from './tokenize-chunk.js';
import { loadTokenizer } from './tokenizer.js';

/**
 * Tokenizes the documents of a path (a file, or a folder of them) into train and validation
 * streams: every `validationEvery`-th document goes to validation, so both splits span the corpus.
 */
export function loadTextCorpus(path: string, options: { validationEvery?: number } = {}): InMemoryTokens {
  const every = options.validationEvery ?? 20;
  const tokenizer = loadTokenizer('gpt2');
  const files = inputFiles([path]);
  const documents: Uint16Array[] = [];
  for (const file of files) {
    const chunker = new LineChunker(file);
    for (const chunk of [...chunker.push(readDecompressedSync(file)), ...chunker.end()]) {
      const { tokens, lengths, bad } = tokenizeChunk(tokenizer, chunk, null);
      if (bad.length > 0) throw badRecordError(file, bad[0]!);
      let at = 0;
      for (const n of lengths) documents.push(tokens.subarray(at, (at += n)));
    }
  }
  if (documents.length === 0) throw noDocumentsError(files);
  const train: Uint16Array[] = [];
  const validation: Uint16Array[] = [];
  documents.forEach((ids, i) => (documents.length > 1 && i % every === every - 1 ? validation : train).push(ids));
  if (validation.length === 0) validation.push(train[train.length - 1]!);
  const join = (docs: Uint16Array[]) => {
    const out = new Uint16Array(docs.reduce((n, d) => n + d.length, 0));
    let at = 0;
    for (const d of docs) {
      out.set(d, at);
      at += d.length;
    }
    return out;
  };
  return new InMemoryTokens(`${path} (GPT-2 tokens)`, tokenizer.vocabSize, {
    train: { tokens: join(train), documents: train.length },
    validation: { tokens: join(validation), documents: validation.length },
  });
}
