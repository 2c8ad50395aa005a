// The zip archive as torch.save writes it (PyTorch ≥ 1.6): entries stored uncompressed, found
// through the central directory (zip64 where the file or an entry passes 4 GiB). Only the
// directory is read here; an entry's bytes are read later, with positioned reads, when a
// tensor needs them.
import { readSync } from 'node:fs';

import { shortName } from './source.js';

export interface ZipEntry {
  name: string;
  /** Byte offset of the entry's data in the file. */
  offset: number;
  size: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

/** Fills `length` bytes from `position`, or says the file ends first. */
export function readBytes(fd: number, position: number, length: number, broken: (why: string) => never): Buffer {
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; ) {
    const n = readSync(fd, out, at, length - at, position + at);
    if (n === 0) broken(`it ends at byte ${position + at}, inside a record that runs to byte ${position + length} (truncated?)`);
    at += n;
  }
  return out;
}

function u64(buffer: Buffer, at: number, broken: (why: string) => never): number {
  const value = buffer.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) broken(`a zip64 field holds ${value}, beyond any file`);
  return Number(value);
}

/** The archive's entries by name, every range inside the file; `broken` throws naming the file. */
export function readZipDirectory(fd: number, fileSize: number, broken: (why: string) => never): Map<string, ZipEntry> {
  const tailLength = Math.min(fileSize, 22 + MAX_COMMENT);
  const tail = readBytes(fd, fileSize - tailLength, tailLength, broken);
  let eocd = -1;
  for (let at = tailLength - 22; at >= 0; at--) {
    if (tail.readUInt32LE(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) broken('it is not a zip archive (no end-of-directory record): a damaged or truncated file');
  let count = tail.readUInt16LE(eocd + 10);
  let directorySize = tail.readUInt32LE(eocd + 12);
  let directoryOffset = tail.readUInt32LE(eocd + 16);
  const eocdPosition = fileSize - tailLength + eocd;
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    if (eocdPosition < 20) broken('its zip64 directory locator is missing');
    const locator = readBytes(fd, eocdPosition - 20, 20, broken);
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) broken('its zip64 directory locator is missing');
    const recordAt = u64(locator, 8, broken);
    if (recordAt + 56 > fileSize) broken(`its zip64 directory record at byte ${recordAt} lies outside the file`);
    const record = readBytes(fd, recordAt, 56, broken);
    if (record.readUInt32LE(0) !== ZIP64_EOCD) broken(`there is no zip64 directory record at byte ${recordAt}`);
    count = u64(record, 32, broken);
    directorySize = u64(record, 40, broken);
    directoryOffset = u64(record, 48, broken);
  }
  if (directoryOffset + directorySize > fileSize) broken(`its directory (bytes ${directoryOffset} to ${directoryOffset + directorySize}) runs past the end of the file (${fileSize} bytes: truncated?)`);
  if (count > directorySize / 46) broken(`its directory claims ${count} entries in ${directorySize} bytes`);
  const directory = readBytes(fd, directoryOffset, directorySize, broken);
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.length || directory.readUInt32LE(at) !== CENTRAL) broken(`directory entry ${i} is damaged`);
    const method = directory.readUInt16LE(at + 10);
    let compressed = directory.readUInt32LE(at + 20);
    let size = directory.readUInt32LE(at + 24);
    const nameLength = directory.readUInt16LE(at + 28);
    const extraLength = directory.readUInt16LE(at + 30);
    const commentLength = directory.readUInt16LE(at + 32);
    let local = directory.readUInt32LE(at + 42);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > directory.length) broken(`directory entry ${i} runs past the directory`);
    const name = directory.toString('utf8', at + 46, at + 46 + nameLength);
    const label = shortName(name);
    // zip64: the fields that overflowed come from the extra field 0x0001, in this order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = directory.readUInt16LE(extra);
      const length = directory.readUInt16LE(extra + 2);
      let field = extra + 4;
      if (field + length > extraEnd) broken(`entry ${label}'s extra fields are damaged`);
      if (id === 0x0001) {
        const next = (): number => {
          if (field + 8 > extra + 4 + length) broken(`entry ${label}'s zip64 field is too short`);
          const value = u64(directory, field, broken);
          field += 8;
          return value;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      extra += 4 + length;
    }
    if (method !== 0 || compressed !== size) broken(`entry ${label} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (local + 30 > fileSize) broken(`entry ${label}'s header at byte ${local} lies outside the file (truncated?)`);
    const header = readBytes(fd, local, 30, broken);
    if (header.readUInt32LE(0) !== LOCAL) broken(`entry ${label} has no local header at byte ${local}`);
    const offset = local + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (offset + size > fileSize) broken(`entry ${label} (bytes ${offset} to ${offset + size}) runs past the end of the file (${fileSize} bytes: truncated?)`);
    entries.set(name, { name, offset, size });
    at = end;
  }
  return entries;
}
