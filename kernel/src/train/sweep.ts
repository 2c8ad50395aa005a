// A sweep's configurations: one base config and the values some of its fields take, expanded
// into every combination (the first field varies slowest), each an experiment arm named by
// its values ("numExperts-8", "numExperts-8_dModel-256").
import { MambalabError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import type { Arm } from './experiment.js';

/** Config fields and the values each takes, in the order they are tried. */
export type SweepValues = { [K in keyof ModelConfig]?: readonly ModelConfig[K][] };

export interface SweepSpec {
  /** The config every run starts from (a preset's config, say). */
  base: Partial<ModelConfig>;
  vary: SweepValues;
}

/** One configuration of a sweep: its arm, and the values that set it apart. */
export interface SweepConfig {
  arm: Arm;
  values: Partial<ModelConfig>;
}

/** A value as part of a run's (directory) name: letters, digits, '.', '_' and '-' only. */
function nameOf(value: unknown): string {
  return String(value).replace(/[^\w.-]+/g, '-');
}

/** Every combination of the varied values, as experiment arms over the base config. */
export function sweepConfigs(spec: SweepSpec): SweepConfig[] {
  if (!spec || typeof spec !== 'object' || !spec.base || typeof spec.base !== 'object') {
    throw new MambalabError('sweep: expected { base: <model config>, vary: { <config field>: [values] } }');
  }
  if (!spec.vary || typeof spec.vary !== 'object') throw new MambalabError('sweep: vary must map config fields to arrays of values, e.g. { numExperts: [1, 4, 8] }');
  const fields = Object.entries(spec.vary) as [keyof ModelConfig, readonly unknown[]][];
  if (fields.length === 0) throw new MambalabError('sweep: vary names no config field; give at least one, e.g. { numExperts: [1, 4, 8] }');
  for (const [field, values] of fields) {
    if (!Array.isArray(values) || values.length === 0) throw new MambalabError(`sweep: vary.${field} must be a non-empty array of values, got ${JSON.stringify(values)}`);
  }
  let combos: Partial<ModelConfig>[] = [{}];
  for (const [field, values] of fields) combos = combos.flatMap((combo) => values.map((value) => ({ ...combo, [field]: value })));
  return combos.map((values) => ({
    values,
    arm: {
      name: Object.entries(values).map(([field, value]) => `${field}-${nameOf(value)}`).join('_'),
      model: { ...spec.base, ...values },
    },
  }));
}
