// The layer grammar: a model is a pattern of layers over the residual stream.
//   M Mamba mixer · E mixture of experts · F dense MLP · A causal attention
// A segment is a run of units, optionally repeated: "ME*8"; a unit is a letter or a
// parallel group "(M|E)" whose branches are summed. Segments are separated by spaces.
import { MambalabError } from '../errors.js';

export const LAYER_KINDS = {
  M: 'Mamba mixer',
  E: 'mixture of experts',
  F: 'dense MLP',
  A: 'causal attention',
} as const;
export type LayerKind = keyof typeof LAYER_KINDS;

/** More layers than any model of the papers by far: a pattern past it is a typo (or a damaged config.json), not a model to allocate. */
export const MAX_LAYERS = 4096;

/** One layer of the expanded pattern: a single kind, or a parallel group of kinds. */
export type PatternLayer = LayerKind[];

function fail(pattern: string, at: number, what: string, hint?: string): never {
  const caret = ' '.repeat(at) + '^';
  throw new MambalabError(`pattern: ${what} at position ${at}${hint ? ` (${hint})` : ''}\n  ${pattern}\n  ${caret}`);
}

function isKind(c: string | undefined): c is LayerKind {
  return c !== undefined && c in LAYER_KINDS;
}

/** Expands a pattern into its layers, in order. Errors point at the offending character. */
export function parsePattern(pattern: string): PatternLayer[] {
  if (typeof pattern !== 'string' || pattern.trim() === '') {
    throw new MambalabError('pattern: expected a layer pattern such as "M*4" or "ME*8", got an empty string');
  }
  const layers: PatternLayer[] = [];
  let i = 0;
  const known = Object.entries(LAYER_KINDS)
    .map(([k, v]) => `${k} (${v})`)
    .join(', ');
  const kind = (): LayerKind => {
    const c = pattern[i];
    if (!isKind(c)) fail(pattern, i, c === undefined ? 'expected a layer letter' : `unknown layer '${c}'`, `known: ${known}`);
    i++;
    return c;
  };
  while (i < pattern.length) {
    if (pattern[i] === ' ') {
      i++;
      continue;
    }
    const segment: PatternLayer[] = [];
    while (i < pattern.length && pattern[i] !== ' ' && pattern[i] !== '*') {
      if (pattern[i] === '(') {
        i++;
        const group = [kind()];
        while (pattern[i] === '|') {
          i++;
          group.push(kind());
        }
        if (pattern[i] !== ')') fail(pattern, i, "expected '|' or ')' in a parallel group");
        i++;
        if (group.length < 2) fail(pattern, i - 1, 'a parallel group needs at least two branches');
        segment.push(group);
      } else {
        segment.push([kind()]);
      }
    }
    let repeat = 1;
    if (pattern[i] === '*') {
      if (segment.length === 0) fail(pattern, i, "'*' must follow layers");
      const start = ++i;
      while (i < pattern.length && /[0-9]/.test(pattern[i]!)) i++;
      repeat = Number(pattern.slice(start, i));
      if (i === start || !Number.isInteger(repeat) || repeat < 1) fail(pattern, start, "expected a positive count after '*'");
      if (i < pattern.length && pattern[i] !== ' ') fail(pattern, i, "expected a space or the end after '*N'");
    }
    if (layers.length + repeat * segment.length > MAX_LAYERS) fail(pattern, i - 1, `more than ${MAX_LAYERS} layers`);
    for (let r = 0; r < repeat; r++) layers.push(...segment.map((l) => [...l]));
  }
  return layers;
}

/**
 * The layers the engine builds, parsed: one array of kinds per layer (a parallel group has
 * several). Rejects repeated kinds in a group.
 */
export function engineLayers(pattern: string): PatternLayer[] {
  const layers = parsePattern(pattern);
  for (const [index, layer] of layers.entries()) {
    if (new Set(layer).size !== layer.length) {
      throw new MambalabError(`pattern: layer ${index} repeats a kind in its parallel group (${layer.join('|')}); branches must differ`);
    }
  }
  return layers;
}

/** Kinds used anywhere in a pattern. */
export function kindsIn(pattern: string): Set<LayerKind> {
  return new Set(parsePattern(pattern).flat());
}
