// JSON-lines input: a byte stream cut into chunks of whole lines (so worker threads can parse
// them independently and errors can still name the line), and the parser of one chunk.
import { isUtf8 } from 'node:buffer';

import { MambalabError } from '../errors.js';

export interface LineChunk {
  /** 1-based number of the chunk's first line in its file. */
  firstLine: number;
  /** Whole lines, each ending in '\n' except perhaps the file's last. */
  bytes: Buffer;
}

// A line this long is not a JSON-lines record but a file without newlines (or a wrong file).
const MAX_LINE_BYTES = 256 << 20;

export class LineChunker {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextLine = 1;

  /** `file` names the input in errors. */
  constructor(
    private readonly file: string,
    private readonly targetBytes = 1 << 20,
  ) {}

  /** Takes the next bytes of the stream; returns the chunks of whole lines now complete (each ≈ targetBytes). */
  push(data: Buffer): LineChunk[] {
    const chunks: LineChunk[] = [];
    let start = 0;
    for (;;) {
      // A chunk closes at the first newline once it holds targetBytes.
      const full = start + Math.max(1, this.targetBytes - this.pendingBytes) - 1;
      const newline = full < data.length ? data.indexOf(0x0a, full) : -1;
      if (newline < 0) break;
      chunks.push(this.take(data.subarray(start, newline + 1)));
      start = newline + 1;
    }
    this.keep(data.subarray(start));
    return chunks;
  }

  /** The rest of the stream: its last line when the file does not end in '\n'. */
  end(): LineChunk[] {
    return this.pendingBytes > 0 ? [this.take(Buffer.alloc(0))] : [];
  }

  private keep(data: Buffer): void {
    if (data.length === 0) return;
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes > MAX_LINE_BYTES) {
      throw new MambalabError(`${this.file}: line ${this.nextLine} is longer than ${MAX_LINE_BYTES >> 20} MB: this is not a JSON-lines file`);
    }
  }

  private take(tail: Buffer): LineChunk {
    const bytes = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    const chunk = { firstLine: this.nextLine, bytes };
    this.nextLine += countNewlines(bytes) + (bytes[bytes.length - 1] === 0x0a ? 0 : 1);
    return chunk;
  }
}

function countNewlines(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, at + 1)) n++;
  return n;
}

export interface TextRecord {
  line: number;
  text: string;
  /** SlimPajama's meta.redpajama_set_name, when the record has one. */
  set: string | null;
}

export interface BadRecord {
  line: number;
  reason: string;
}

/** A bad record where stopping is the policy (loadTextCorpus always, prepare by default). */
export function badRecordError(file: string, bad: BadRecord): MambalabError {
  return new MambalabError(`${file}:${bad.line}: line ${bad.line} ${bad.reason}. (\`mambalab data prepare --on-bad-record skip\`, or prepare's onBadRecord: 'skip', counts and skips such records)`);
}

export interface ParsedChunk {
  records: TextRecord[];
  bad: BadRecord[];
  /** Empty or whitespace-only lines (not documents, not errors). */
  blank: number;
}

/** Parses each line of a chunk as a JSON object with a "text" string; the rest are bad records. */
export function parseLines(chunk: LineChunk): ParsedChunk {
  const out: ParsedChunk = { records: [], bad: [], blank: 0 };
  let bytes = chunk.bytes;
  // A UTF-8 byte-order mark may open a file; it is not part of the first record.
  if (chunk.firstLine === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (isUtf8(bytes)) {
    const lines = bytes.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, i) => parseLine(line, chunk.firstLine + i, out));
    return out;
  }
  // Some line is not UTF-8: find which, line by line.
  let line = chunk.firstLine;
  for (let start = 0; start < bytes.length; line++) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline < 0 ? bytes.length : newline;
    const lineBytes = bytes.subarray(start, end);
    if (isUtf8(lineBytes)) parseLine(lineBytes.toString('utf8'), line, out);
    else {
      const at = firstInvalidUtf8(lineBytes);
      out.bad.push({ line, reason: `is not valid UTF-8 (byte 0x${lineBytes[at]!.toString(16)} at byte ${at + 1} of the line)` });
    }
    start = end + 1;
  }
  return out;
}

function parseLine(line: string, number: number, out: ParsedChunk): void {
  if (line.trim() === '') {
    out.blank++;
    return;
  }
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (e) {
    out.bad.push({ line: number, reason: `is not valid JSON (${(e as Error).message}): ${excerpt(line)}` });
    return;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    out.bad.push({ line: number, reason: `is JSON but not an object: ${excerpt(line)}` });
    return;
  }
  const { text, meta } = record as { text?: unknown; meta?: { redpajama_set_name?: unknown } | null };
  if (typeof text !== 'string') {
    out.bad.push({ line: number, reason: `has no "text" string field: ${excerpt(line)}` });
    return;
  }
  const set = meta?.redpajama_set_name;
  out.records.push({ line: number, text, set: typeof set === 'string' ? set : null });
}

function excerpt(line: string): string {
  return JSON.stringify(line.length > 80 ? line.slice(0, 80) + '…' : line);
}

/** Offset of the first byte where valid UTF-8 stops (for the message). */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    const n = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (!isUtf8(bytes.subarray(i, i + n))) return i;
    i += n;
  }
  return -1;
}
