// Flag parsing for the CLI commands, with errors that name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { MambalabError } from '../errors.js';
import { preset, presetNames, type Preset } from '../models/presets.js';

type Options = NonNullable<ParseArgsConfig['options']>;

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>>;

export function parseFlags<O extends Options>(command: string, argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new MambalabError(`${command}: ${(e as Error).message.replace(/\. To specify a positional argument.*$/, '')}`);
  }
}

export function intFlag(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new MambalabError(`--${name}: expected an integer ≥ ${min}, got '${value}'`);
  return n;
}

export function numberFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new MambalabError(`--${name}: expected a non-negative number, got '${value}'`);
  return n;
}

/** A flag that takes one of a few words; undefined gives the fallback. */
export function choiceFlag<const C extends string>(name: string, value: string | undefined, choices: readonly C[], fallback: C): C {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new MambalabError(`--${name}: expected ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got '${value}'`);
  }
  return value as C;
}

/** The preset that --model and --size name, with errors that name the flags. */
export function presetFlags(model: string, size: string): Preset {
  const families = presetNames();
  const sizes = families[model];
  if (!sizes) throw new MambalabError(`--model ${model}: unknown model (known: ${Object.keys(families).join(', ')})`);
  if (!sizes.includes(size)) throw new MambalabError(`--size ${size}: unknown size for ${model} (known: ${sizes.join(', ')})`);
  return preset(model, size);
}
