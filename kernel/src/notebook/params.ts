// Notebook parameters, as papermill has them: the code cell tagged `parameters` holds the
// defaults, and the values given on the command line go into a new cell right after it,
// tagged `injected-parameters`, which declares them again (tslab lets a later cell redeclare
// a top-level name). Numbers and booleans stay numbers and booleans; anything else is a string.
import { MambalabError } from '../errors.js';
import type { Cell, Notebook } from './ipynb.js';

export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

export const PARAMETERS_TAG = 'parameters';
export const INJECTED_TAG = 'injected-parameters';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function valueOf(text: string): ParameterValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  // Number('') is 0 and Number(' 1') is 1: only a plain numeral is a number.
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  return text;
}

/** `key=value` pairs (--param) as parameters; a malformed pair is an error that names it. */
export function parseParameters(pairs: readonly string[]): Parameters {
  const parameters: Parameters = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 0) throw new MambalabError(`notebook: --param ${JSON.stringify(pair)}: expected key=value, e.g. --param scale=ci`);
    const key = pair.slice(0, at);
    if (!IDENTIFIER.test(key)) throw new MambalabError(`notebook: --param ${JSON.stringify(pair)}: ${JSON.stringify(key)} is not a variable name (letters, digits, _ and $, not starting with a digit)`);
    if (key in parameters) throw new MambalabError(`notebook: --param ${key} is given twice`);
    parameters[key] = valueOf(pair.slice(at + 1));
  }
  return parameters;
}

/**
 * The cell's code. Each value is declared with its plain type (`string`, not the literal
 * 'paper'), so the notebook may still compare it with other values of its kind.
 */
export function parametersSource(parameters: Parameters): string {
  return Object.entries(parameters)
    .map(([key, value]) => `const ${key}: ${typeof value} = ${JSON.stringify(value)};`)
    .join('\n');
}

const tagged = (cell: Cell, tag: string) => Array.isArray(cell.metadata.tags) && cell.metadata.tags.includes(tag);

/**
 * The notebook with `parameters` in an `injected-parameters` cell after the `parameters`
 * cell (replacing an injected cell of an earlier run). Without parameters, it is unchanged.
 */
export function injectParameters(nb: Notebook, parameters: Parameters): Notebook {
  if (Object.keys(parameters).length === 0) return nb;
  const cells = nb.cells.filter((c) => !tagged(c, INJECTED_TAG));
  const at = cells.findIndex((c) => c.cell_type === 'code' && tagged(c, PARAMETERS_TAG));
  if (at < 0) {
    throw new MambalabError(`notebook: --param given, but no code cell is tagged "${PARAMETERS_TAG}" (tag the cell that sets the defaults)`);
  }
  const injected: Cell = {
    cell_type: 'code',
    id: `injected-parameters`,
    metadata: { tags: [INJECTED_TAG] },
    source: `// Parameters (mambalab notebook run --param)\n${parametersSource(parameters)}`,
    outputs: [],
    execution_count: null,
  };
  return { ...nb, cells: [...cells.slice(0, at + 1), injected, ...cells.slice(at + 1)] };
}
