// Notebooks as nbformat 4 JSON: read (checked, with errors that name the file and the cell),
// written back the way Jupyter writes them (indent 1, multi-line strings as lists of lines)
// and atomically, so a run that fails or is killed never leaves a half-written file.
import { readFileSync } from 'node:fs';

import { MambalabError } from '../errors.js';
import { writeFileDurably } from '../files.js';

/** A multi-line string as nbformat stores it: whole, or as lines that keep their '\n'. */
export type MultilineString = string | string[];

export type Output =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: MultilineString }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'execute_result'; execution_count: number | null; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

export interface Cell {
  cell_type: 'code' | 'markdown' | 'raw';
  id?: string;
  metadata: Record<string, unknown> & { tags?: string[] };
  source: MultilineString;
  /** Code cells only. */
  outputs?: Output[];
  execution_count?: number | null;
  attachments?: Record<string, unknown>;
}

export interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: Cell[];
}

export const joinLines = (text: MultilineString): string => (Array.isArray(text) ? text.join('') : text);

/** Lines that keep their '\n', as Jupyter stores source and text. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
const isText = (x: unknown): x is MultilineString => typeof x === 'string' || (Array.isArray(x) && x.every((l) => typeof l === 'string'));

/** The notebook in `path`, checked to be nbformat 4 with cells we can run. */
export function readNotebook(path: string): Notebook {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MambalabError(code === 'ENOENT' ? `notebook: ${path} does not exist` : `notebook: cannot read ${path} (${(e as Error).message})`);
  }
  let nb: unknown;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new MambalabError(`notebook: ${path} is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(nb)) throw new MambalabError(`notebook: ${path} is not a notebook (expected a JSON object with "cells")`);
  if (nb.nbformat !== 4) throw new MambalabError(`notebook: ${path} is nbformat ${JSON.stringify(nb.nbformat)}; expected nbformat 4`);
  if (!Array.isArray(nb.cells)) throw new MambalabError(`notebook: ${path} has no "cells" array`);
  nb.cells.forEach((cell: unknown, i: number) => {
    const where = `notebook: ${path}, cell ${i + 1}`;
    if (!isObject(cell)) throw new MambalabError(`${where} is not an object`);
    if (!['code', 'markdown', 'raw'].includes(cell.cell_type as string)) throw new MambalabError(`${where} has cell_type ${JSON.stringify(cell.cell_type)}; expected code, markdown or raw`);
    if (!isText(cell.source)) throw new MambalabError(`${where} has no source (a string or a list of strings)`);
    if (cell.metadata !== undefined && !isObject(cell.metadata)) throw new MambalabError(`${where} has metadata that is not an object`);
    cell.metadata ??= {};
  });
  return { nbformat: 4, nbformat_minor: typeof nb.nbformat_minor === 'number' ? nb.nbformat_minor : 5, metadata: isObject(nb.metadata) ? nb.metadata : {}, cells: nb.cells as Cell[] };
}

/** Strings of text outputs and text/* data as lists of lines (JSON data stays as it is). */
function storedOutput(output: Output): Output {
  if (output.output_type === 'stream') return { ...output, text: splitLines(joinLines(output.text)) };
  if (output.output_type === 'error') return output;
  const data = Object.fromEntries(Object.entries(output.data).map(([mime, value]) => [mime, typeof value === 'string' ? splitLines(value) : value]));
  return { ...output, data };
}

function storedCell(cell: Cell): Cell {
  const source = splitLines(joinLines(cell.source));
  if (cell.cell_type !== 'code') return { ...cell, source };
  return { ...cell, source, execution_count: cell.execution_count ?? null, outputs: (cell.outputs ?? []).map(storedOutput) };
}

/** The notebook as Jupyter writes it: keys in order, indent 1, a final newline. */
export function notebookJson(nb: Notebook): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (!isObject(value)) return value;
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  };
  return JSON.stringify(sorted({ ...nb, cells: nb.cells.map(storedCell) }), null, 1) + '\n';
}

/** Writes the notebook to `path` whole or not at all (temporary file, fsync, rename). */
export function writeNotebook(path: string, nb: Notebook): void {
  writeFileDurably(path, notebookJson(nb));
}
