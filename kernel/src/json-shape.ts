// The shape of a JSON document read from a file (dataset.json, run.json, trainer.json), checked
// where it is read: a field of another type is a MambalabError naming the file and the field,
// instead of a TypeError, a NaN or a garbled number somewhere later.
import { MambalabError } from './errors.js';

/**
 * 'count' is a non-negative integer, 'number' a finite number; [shape] is a list of that shape;
 * { key: shape } an object with those keys ('key?' may be absent, '*' is every other key).
 */
export type Shape = 'string' | 'number' | 'count' | 'boolean' | 'any' | readonly [Shape] | { readonly [key: string]: Shape };

const EXPECTED = { string: 'a string', number: 'a number', count: 'a non-negative integer', boolean: 'true or false' } as const;

function matches(value: unknown, kind: keyof typeof EXPECTED): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'count':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'boolean':
      return typeof value === 'boolean';
  }
}

function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 60 ? `${json.slice(0, 60)}…` : json;
}

/** `value`, read from `file`, as T once it has `shape`; else a MambalabError naming the file and the first field that differs. */
export function shaped<T>(file: string, value: unknown, shape: Shape, at = ''): T {
  const wrong = (expected: string): never => {
    throw new MambalabError(`${file}: ${at || 'the document'} is ${shown(value)}, expected ${expected}`);
  };
  if (shape === 'any') return value as T;
  if (typeof shape === 'string') {
    if (!matches(value, shape as keyof typeof EXPECTED)) wrong(EXPECTED[shape as keyof typeof EXPECTED]);
  } else if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return wrong('a list');
    value.forEach((item, i) => shaped(file, item, shape[0] as Shape, `${at}[${i}]`));
  } else {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return wrong('an object');
    const object = value as Record<string, unknown>;
    const fields = shape as Record<string, Shape>;
    const named = new Set<string>();
    for (const [key, inner] of Object.entries(fields)) {
      if (key === '*') continue;
      const name = key.replace(/\?$/, '');
      named.add(name);
      if (object[name] === undefined && key.endsWith('?')) continue;
      shaped(file, object[name], inner, at ? `${at}.${name}` : name);
    }
    const rest = fields['*'];
    if (rest) for (const [name, item] of Object.entries(object)) if (!named.has(name)) shaped(file, item, rest, at ? `${at}.${name}` : name);
  }
  return value as T;
}
