// A corpus file's decompressed bytes: gzip (C4's .json.gz, multi-member too), zstd
// (SlimPajama's .jsonl.zst, written with long-range windows) or plain. The format comes from
// the file's first bytes; a name that promises one format over bytes of another is an error.
// Two ways to get them, deciding and failing alike: streamed in chunks (prepare: any size), or
// whole at once (loadTextCorpus, which is synchronous and keeps the corpus in memory anyway).
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';

import { MambalabError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

// 2^31 bytes, zstd's largest window on 64-bit: decoders refuse windows over 2^27 unless told.
const ZSTD_WINDOW_LOG_MAX = 31;

/** The file's format from its first bytes; throws when its name promises another (or it is empty). */
function compressionOf(file: string, head: Buffer): Compression {
  const found: Compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : 'none';
  const named: Compression = /\.gz$/.test(file) ? 'gzip' : /\.zst$/.test(file) ? 'zstd' : 'none';
  if (named !== 'none' && head.length === 0) throw new MambalabError(`${file}: the name says ${named} but the file is empty: a failed download or a misnamed file`);
  if (named !== 'none' && named !== found) {
    throw new MambalabError(`${file}: the name says ${named} but the data is ${found === 'none' ? 'not compressed (or not a format we know)' : found}: a damaged or misnamed file`);
  }
  return found;
}

/** What a decoder's or reader's failure means for the user: a truncated file, corrupt data, or an unreadable file. */
function readError(file: string, compression: Compression, error: unknown): MambalabError {
  if (error instanceof MambalabError) return error;
  const message = (error as Error).message;
  if (compression === 'none') return new MambalabError(`${file}: cannot read it (${message})`);
  // gzip, streamed zstd, and a zstd frame cut short (its size check), in that order.
  const truncated = /unexpected end of file|ended in middle of compressed data frame|src size is incorrect/i.test(message);
  // The decoders word a cut-short file differently, and the wording adds nothing: it is left out.
  return new MambalabError(truncated ? `${file}: the ${compression} data ends early: the file is truncated; fetch it again` : `${file}: corrupt ${compression} data (${message})`);
}

/**
 * Yields the decompressed bytes of file in chunks; every compressed chunk read also goes to
 * onRead (progress). Corrupt or truncated data ends in a MambalabError naming the file.
 */
export async function* readDecompressed(file: string, onRead?: (bytes: number) => void): AsyncGenerator<Buffer> {
  const head = Buffer.alloc(4);
  let headBytes: number;
  try {
    const fd = openSync(file, 'r');
    try {
      headBytes = readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw readError(file, 'none', e);
  }
  const compression = compressionOf(file, head.subarray(0, headBytes));
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  let stream: Readable = source;
  if (compression !== 'none') {
    // zstd-napi is a native addon: loaded only for zstd input, so nothing else depends on its build.
    const decoder = compression === 'gzip' ? createGunzip({ chunkSize: 1 << 20 }) : new (await import('zstd-napi')).DecompressStream({ windowLogMax: ZSTD_WINDOW_LOG_MAX });
    source.on('data', (chunk) => onRead?.(chunk.length)); // pipe() keeps the source flowing
    source.on('error', (e) => decoder.destroy(e));
    stream = source.pipe(decoder);
  }
  try {
    for await (const chunk of stream) {
      if (stream === source) onRead?.((chunk as Buffer).length);
      yield chunk as Buffer;
    }
  } catch (e) {
    throw readError(file, compression, e);
  } finally {
    source.destroy(); // when the reader stops early, or failed
  }
}

/** The whole decompressed file at once: the same formats, names and errors as readDecompressed. */
export function readDecompressedSync(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw readError(file, 'none', e);
  }
  const compression = compressionOf(file, bytes.subarray(0, 4));
  try {
    if (compression === 'gzip') return gunzipSync(bytes);
    if (compression === 'zstd') return zstdDecompressSync(bytes);
    return bytes;
  } catch (e) {
    throw readError(file, compression, e);
  }
}

interface Zstd {
  Decompressor: new () => { setParameters(parameters: { windowLogMax: number }): void; decompress(data: Uint8Array): Buffer };
}
interface ZstdFrames {
  findFrameCompressedSize(frames: Uint8Array): number;
}

function zstdDecompressSync(bytes: Buffer): Buffer {
  // Loaded only for zstd input, as in readDecompressed.
  const require = createRequire(import.meta.url);
  const { findFrameCompressedSize } = require('zstd-napi/binding') as ZstdFrames;
  // A frame without a size in its header and cut short would decode to a quietly short result:
  // walking the frames first fails on a truncated one.
  for (let rest: Buffer = bytes; rest.length > 0; rest = rest.subarray(findFrameCompressedSize(rest)));
  // A decoder of its own for each file: zstd-napi's shared one stays mid-frame after corrupt
  // data and then refuses every later file ("Operation not authorized at current processing stage").
  const decoder = new (require('zstd-napi') as Zstd).Decompressor();
  decoder.setParameters({ windowLogMax: ZSTD_WINDOW_LOG_MAX });
  return decoder.decompress(bytes);
}
