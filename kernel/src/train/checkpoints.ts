// A training directory's checkpoints: each one a directory checkpoints/step-<8 digits>/ that
// appears whole or not at all, the last `keep` of them kept, and `checkpoint`, a link to the newest.
//
// Writing one (writeCheckpoint): the files go into checkpoints/.tmp-step-N-<pid>/, each fsynced;
// the directory is fsynced and renamed to step-N, which is the commit point (a crash before it
// leaves a temporary directory that the next write removes, and the previous checkpoints
// untouched); checkpoints/ is fsynced; a new link renamed over `checkpoint` points at step-N; the
// oldest beyond `keep` are renamed to .old-… before they are removed, so a crash while removing
// never leaves part of a step-N directory. A run directory is therefore readable at every byte.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';

import { MambalabError } from '../errors.js';
import { fsyncPath } from '../files.js';

export const CHECKPOINTS_DIR = 'checkpoints';
/** A link to the newest checkpoint (before checkpoints/ existed, the one checkpoint itself). */
export const NEWEST_CHECKPOINT = 'checkpoint';
/** The file a checkpoint writes last and whose `step` names its position (see Trainer.saveCheckpoint). */
export const TRAINER_FILE = 'trainer.json';
/** Checkpoints kept when nothing says otherwise: the newest and one to fall back on. */
export const DEFAULT_KEEP = 2;

const STEP_DIR = /^step-(\d+)$/;
const LEFTOVER = /^\.(tmp|old)-/;

export interface CheckpointEntry {
  step: number;
  dir: string;
}

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Every file under `dir`, then `dir` itself, reach the disk. */
function fsyncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(path);
    else fsyncPath(path);
  }
  fsyncPath(dir);
}

/** The step a checkpoint directory's trainer.json names, or undefined when it has none readable. */
function savedStep(dir: string): number | undefined {
  try {
    const step = (JSON.parse(readFileSync(join(dir, TRAINER_FILE), 'utf8')) as { step?: unknown }).step;
    return Number.isInteger(step) ? (step as number) : undefined;
  } catch {
    return undefined;
  }
}

/** `root/checkpoint` when it is a directory of its own (runs written before checkpoints/ existed). */
function legacyCheckpoint(root: string): string | undefined {
  const path = join(root, NEWEST_CHECKPOINT);
  try {
    return lstatSync(path).isDirectory() ? path : undefined;
  } catch {
    return undefined;
  }
}

/** The complete checkpoints under `root`, oldest first (a legacy `checkpoint/` directory counts, at its step). */
export function listCheckpoints(root: string): CheckpointEntry[] {
  const dir = join(root, CHECKPOINTS_DIR);
  const found = existsSync(dir)
    ? readdirSync(dir).flatMap((name) => {
        const match = STEP_DIR.exec(name);
        return match && statSync(join(dir, name)).isDirectory() ? [{ step: Number(match[1]), dir: join(dir, name) }] : [];
      })
    : [];
  const legacy = legacyCheckpoint(root);
  const legacyStep = legacy ? savedStep(legacy) : undefined;
  if (legacy && legacyStep !== undefined && !found.some((c) => c.step === legacyStep)) found.push({ step: legacyStep, dir: legacy });
  return found.sort((a, b) => a.step - b.step);
}

export function newestCheckpoint(root: string): CheckpointEntry | undefined {
  return listCheckpoints(root).at(-1);
}

/** Moves a directory out of the way, then removes it: a crash in between leaves only a leftover that the next write clears. */
function removeDir(checkpoints: string, dir: string): void {
  mkdirSync(checkpoints, { recursive: true });
  const away = join(checkpoints, `.old-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
  renameSync(dir, away);
  rmSync(away, { recursive: true, force: true });
}

function pointNewestAt(root: string, name: string): void {
  const legacy = legacyCheckpoint(root);
  if (legacy) {
    // A checkpoint from before checkpoints/ existed joins the others, so the link can take its name.
    const step = savedStep(legacy);
    const target = join(root, CHECKPOINTS_DIR, step !== undefined ? stepDirName(step) : 'legacy-checkpoint');
    if (existsSync(target)) removeDir(join(root, CHECKPOINTS_DIR), legacy);
    else renameSync(legacy, target);
  }
  const link = join(root, `.${NEWEST_CHECKPOINT}.tmp-${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(join(CHECKPOINTS_DIR, name), link);
  renameSync(link, join(root, NEWEST_CHECKPOINT));
  fsyncPath(root);
}

/**
 * Writes a checkpoint of `step` under `root` as the header says: `save(dir)` fills a temporary
 * directory, which becomes checkpoints/step-N once everything in it is on disk; then `checkpoint`
 * points at it and all but the newest `keep` are removed. Returns the checkpoint's directory.
 */
export function writeCheckpoint(root: string, step: number, save: (dir: string) => void, keep = DEFAULT_KEEP): string {
  if (!Number.isInteger(keep) || keep < 1) throw new MambalabError(`checkpoints: keep must be a positive integer, got ${keep}`);
  const checkpoints = join(root, CHECKPOINTS_DIR);
  mkdirSync(checkpoints, { recursive: true });
  for (const name of readdirSync(checkpoints)) if (LEFTOVER.test(name)) rmSync(join(checkpoints, name), { recursive: true, force: true });
  const name = stepDirName(step);
  const tmp = join(checkpoints, `.tmp-${name}-${process.pid}`);
  mkdirSync(tmp);
  try {
    save(tmp);
    fsyncTree(tmp);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  const final = join(checkpoints, name);
  if (existsSync(final)) removeDir(checkpoints, final);
  renameSync(tmp, final);
  fsyncPath(checkpoints);
  pointNewestAt(root, name);
  for (const old of listCheckpoints(root).slice(0, -keep)) removeDir(checkpoints, old.dir);
  return final;
}

/**
 * Removes the checkpoints after `step` (a history that training from an earlier point replaces),
 * pointing `checkpoint` at the newest left.
 */
export function removeCheckpointsAfter(root: string, step: number): void {
  const later = listCheckpoints(root).filter((c) => c.step > step);
  if (later.length === 0) return;
  for (const c of later) removeDir(join(root, CHECKPOINTS_DIR), c.dir);
  const newest = newestCheckpoint(root);
  if (!newest) rmSync(join(root, NEWEST_CHECKPOINT), { force: true });
  else if (newest.dir !== legacyCheckpoint(root)) pointNewestAt(root, basename(newest.dir));
}

/** When the next periodic checkpoint is due: every `every` steps and/or every `minutes` of wall time (0: never). */
export class CheckpointSchedule {
  private lastMs: number;

  constructor(
    private readonly every: number,
    private readonly minutes: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastMs = now();
  }

  due(step: number): boolean {
    return (this.every > 0 && step % this.every === 0) || (this.minutes > 0 && this.now() - this.lastMs >= this.minutes * 60_000);
  }

  /** A checkpoint was written: the minutes count from now. */
  written(): void {
    this.lastMs = this.now();
  }
}
