// Streams a corpus file's decompressed bytes: gzip (C4's .json.gz, multi-member too), zstd
// (SlimPajama's .jsonl.zst, written with long-range windows) or plain. The format comes from
// the file's first bytes; a name that promises one format over bytes of another is an error.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { MambalabError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

// 2^31 bytes, zstd's largest window on 64-bit: decoders refuse windows over 2^27 unless told.
const ZSTD_WINDOW_LOG_MAX = 31;

function sniff(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Yields the decompressed bytes of file in chunks; every compressed chunk read also goes to
 * onRead (progress). Corrupt or truncated data ends in a MambalabError naming the file.
 */
export async function* readDecompressed(file: string, onRead?: (bytes: number) => void): AsyncGenerator<Buffer> {
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const compression = sniff(head);
  const named: Compression = /\.gz$/.test(file) ? 'gzip' : /\.zst$/.test(file) ? 'zstd' : 'none';
  if (named !== 'none' && named !== compression) {
    throw new MambalabError(`${file}: the name says ${named} but the data is ${compression === 'none' ? 'not compressed (or not a format we know)' : compression}: a damaged or misnamed file`);
  }
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  let read = 0;
  const count = (n: number) => {
    read += n;
    onRead?.(n);
  };
  let stream: Readable = source;
  if (compression !== 'none') {
    // zstd-napi is a native addon: loaded only for zstd input, so nothing else depends on its build.
    const decoder = compression === 'gzip' ? createGunzip({ chunkSize: 1 << 20 }) : new (await import('zstd-napi')).DecompressStream({ windowLogMax: ZSTD_WINDOW_LOG_MAX });
    source.on('data', (chunk) => count(chunk.length)); // pipe() keeps the source flowing
    source.on('error', (e) => decoder.destroy(e));
    stream = source.pipe(decoder);
  }
  try {
    for await (const chunk of stream) {
      if (stream === source) count((chunk as Buffer).length);
      yield chunk as Buffer;
    }
  } catch (e) {
    if (e instanceof MambalabError) throw e;
    const message = (e as Error).message;
    const truncated = /unexpected end of file|ended in middle of compressed data frame/i.test(message);
    if (compression === 'none') throw new MambalabError(`${file}: cannot read it (${message})`);
    throw new MambalabError(
      truncated
        ? `${file}: the ${compression} data ends early (${message}): the file is truncated; fetch it again`
        : `${file}: corrupt ${compression} data near byte ${read.toLocaleString('en-US')} (${message})`,
    );
  } finally {
    source.destroy(); // when the reader stops early, or failed
  }
}
