// The run directory of `mambalab train`: config.json (what is trained, written once and compared
// on --resume), metrics.jsonl (a JSON line per step, appended as training goes and on disk before
// every checkpoint) and the checkpoints (train/checkpoints.ts: checkpoints/step-N, checkpoint).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';
import { writeAll, writeFileDurably } from '../files.js';
import { differences } from '../train/differences.js';

export const RUN_CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';

/**
 * config.json fields that may change when a run is resumed: how often it checkpoints, when it
 * gives up, and the micro-batches this machine's memory needs (the update is the same).
 */
const MAY_CHANGE_ON_RESUME = ['trainer.gradAccumulation', 'checkpointEvery', 'checkpointMinutes', 'keep', 'maxBadSteps'];

/** Refuses a directory that holds a run already (--resume continues it). */
export function refuseExistingRun(out: string): void {
  if (existsSync(join(out, RUN_CONFIG_FILE))) {
    throw new MambalabError(`train: ${out} already holds a run (${RUN_CONFIG_FILE}); --resume continues it, or choose another --out`);
  }
}

/** Starts a run in `out`: config.json and an empty metrics.jsonl. */
export function startRun(out: string, config: object): void {
  refuseExistingRun(out);
  mkdirSync(out, { recursive: true });
  writeFileDurably(join(out, METRICS_FILE), '');
  writeFileDurably(join(out, RUN_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
}

/**
 * Checks that the run in `out` trains what `config` says (but for what may change on resume, and
 * the fields in `unknownYet`), naming every field that differs.
 */
export function checkResumable(out: string, config: object, unknownYet: readonly string[] = []): void {
  const file = join(out, RUN_CONFIG_FILE);
  if (!existsSync(file)) throw new MambalabError(`train --resume: ${out} holds no run (no ${RUN_CONFIG_FILE}); start it without --resume`);
  let saved: unknown;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MambalabError(`train --resume: ${file} is not valid JSON (${(e as Error).message})`);
  }
  const changed = differences(saved, JSON.parse(JSON.stringify(config)), [...MAY_CHANGE_ON_RESUME, ...unknownYet]);
  if (changed.length > 0) {
    throw new MambalabError(`train --resume: ${out} was trained with another config, so it cannot be resumed with this one:\n  ${changed.join('\n  ')}`);
  }
}

/**
 * Keeps the metrics lines of steps up to `step` (those after it are trained again from the
 * checkpoint; a line cut short by a crash is dropped), replacing the file whole. Returns how many.
 */
export function keepMetricsUpTo(out: string, step: number): number {
  const file = join(out, METRICS_FILE);
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  const kept = lines.filter((line) => {
    try {
      return (JSON.parse(line) as { step?: unknown }).step as number <= step;
    } catch {
      return false;
    }
  });
  writeFileDurably(file, kept.map((line) => line + '\n').join(''));
  return kept.length;
}

/** Appends the JSON lines of a run's steps; sync() puts them on disk (before a checkpoint). */
export class MetricsAppender {
  private readonly fd: number;

  constructor(out: string) {
    this.fd = openSync(join(out, METRICS_FILE), 'a');
  }

  append(line: object): void {
    writeAll(this.fd, Buffer.from(JSON.stringify(line) + '\n', 'utf8'));
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}
