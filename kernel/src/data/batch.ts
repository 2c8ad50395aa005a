// A batch of token windows: batchSize rows of seqLen + 1 ids (inputs and, shifted by one,
// targets), flattened row-major.
import { MambalabError } from '../errors.js';

export interface Batch {
  tokens: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Accepts a Batch or rows of token ids (number[][], all of one length ≥ 2). */
export function toBatch(input: Batch | number[][]): Batch {
  if (Array.isArray(input)) {
    const rows: unknown[] = input;
    if (rows.length === 0) throw new MambalabError('batch: expected at least one row of token ids');
    if (typeof rows[0] === 'number') {
      throw new MambalabError('batch: expected rows of token ids (number[][]), got one flat array of numbers; a single sequence is [ids]');
    }
    const notARow = (r: number) => new MambalabError(`batch: row ${r} is ${JSON.stringify(rows[r]) ?? String(rows[r])}, not an array of token ids`);
    if (!Array.isArray(rows[0])) throw notARow(0);
    const width = rows[0].length;
    if (width < 2) throw new MambalabError(`batch: each row needs at least 2 token ids (inputs and next-token targets), got ${width}`);
    const tokens = new Int32Array(rows.length * width);
    rows.forEach((row, r) => {
      if (!Array.isArray(row)) throw notARow(r);
      if (row.length !== width) throw new MambalabError(`batch: row ${r} has ${row.length} ids, expected ${width} like row 0`);
      row.forEach((id, c) => {
        if (!Number.isInteger(id)) throw new MambalabError(`batch: row ${r}, column ${c} is ${id}, not an integer token id`);
        tokens[r * width + c] = id;
      });
    });
    return { tokens, batchSize: rows.length, seqLen: width - 1 };
  }
  const { tokens, batchSize, seqLen } = input;
  if (!(tokens instanceof Int32Array)) throw new MambalabError('batch.tokens: expected an Int32Array');
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new MambalabError(`batch.batchSize: expected a positive integer, got ${batchSize}`);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new MambalabError(`batch.seqLen: expected a positive integer, got ${seqLen}`);
  if (tokens.length !== batchSize * (seqLen + 1)) {
    throw new MambalabError(`batch.tokens: expected batchSize × (seqLen + 1) = ${batchSize * (seqLen + 1)} ids, got ${tokens.length}`);
  }
  return input;
}
