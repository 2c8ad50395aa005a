// Worker thread entry of the tokenizer pool: loads the tokenizer once, then answers chunks.
import { parentPort, workerData } from 'node:worker_threads';

import type { LineChunk } from './lines.js';
import { tokenizeChunk } from './tokenize-chunk.js';
import { loadTokenizer } from './tokenizer.js';

const { tokenizer: name, tokenizerFile, sets } = workerData as { tokenizer: string; tokenizerFile?: string; sets: string[] | null };
const tokenizer = loadTokenizer(name, { file: tokenizerFile });
const wanted = sets ? new Set(sets) : null;

parentPort!.on('message', (chunk: { firstLine: number; bytes: Uint8Array }) => {
  const bytes = Buffer.from(chunk.bytes.buffer, chunk.bytes.byteOffset, chunk.bytes.byteLength);
  const result = tokenizeChunk(tokenizer, { firstLine: chunk.firstLine, bytes } satisfies LineChunk, wanted);
  parentPort!.postMessage(result, [result.tokens.buffer as ArrayBuffer, result.lengths.buffer as ArrayBuffer]);
});
