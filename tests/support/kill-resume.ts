// The kill test's harness, shared by the CPU test (tests/kernel/cli/kill.test.ts) and the GPU
// host's driver (tests/gpu/kill-test.mjs): runs the real `mambalab train` in a child process,
// SIGKILLs it at seeded random moments (after a random step, or inside a checkpoint write: while
// its temporary directory exists), checks after every kill that the run directory is readable,
// resumes with --resume, and at the end compares the run with an uninterrupted one of the same
// seed: the final checkpoint bit for bit and every metrics line but its wall-clock fields.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { loadModel } from '../../kernel/src/models/model.js';
import { CHECKPOINTS_DIR, listCheckpoints, NEWEST_CHECKPOINT } from '../../kernel/src/train/checkpoints.js';
import { WALL_CLOCK_KEYS } from '../../kernel/src/train/metrics.js';
import { Trainer } from '../../kernel/src/train/trainer.js';

export interface KillResumeOptions {
  /** How to run the CLI: the program and the arguments before `train` (e.g. node, --import, tsx, main.ts). */
  cli: [string, ...string[]];
  /** `train` and its flags, without --out and --resume; they must include --json and checkpointing. */
  train: string[];
  /** Total steps the run trains (its --steps). */
  steps: number;
  /** An empty directory for the two runs. */
  work: string;
  kills: number;
  seed: number;
  /** After the temporary directory of a checkpoint appears, the kill waits up to this long (default 10 ms). */
  writeDelayMs?: number;
}

export interface Kill {
  attempt: number;
  kind: 'step' | 'write';
  /** The step the attempt resumed from (0: it started the run). */
  resumedFrom: number;
  /** The last step the attempt printed before it was killed. */
  lastStep: number;
  /** A temporary checkpoint directory outlived the process: it died inside a write. */
  insideWrite: boolean;
}

export interface KillResumeReport {
  kills: Kill[];
  attempts: number;
  /** What differs from the uninterrupted run (empty: identical). */
  differences: string[];
  /** What was found unreadable after a kill (empty: always readable). */
  unreadable: string[];
  /** Metrics keys left out of the comparison: measured by the wall clock. */
  wallClockKeys: readonly string[];
  seconds: number;
}

/** A small seeded generator (xorshift32), so a failing plan can be rerun. */
function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function temporaries(dir: string): string[] {
  const checkpoints = join(dir, CHECKPOINTS_DIR);
  return existsSync(checkpoints) ? readdirSync(checkpoints).filter((name) => name.startsWith('.tmp-')) : [];
}

/** When to kill an attempt: after a step's line, or inside its n-th checkpoint write; then after a delay. */
interface KillAt {
  kind: 'step' | 'write';
  step: number;
  write: number;
  delayMs: number;
}

/** Runs one attempt; resolves with the last step it printed and whether it exited by itself (code 0). */
function attempt(o: KillResumeOptions, dir: string, resume: boolean, kill: KillAt | undefined) {
  // Made before the process starts so that it can be watched; the CLI makes it when missing, and takes it as it is.
  mkdirSync(join(dir, CHECKPOINTS_DIR), { recursive: true });
  const [program, ...before] = o.cli;
  const child = spawn(program, [...before, ...o.train, '--out', dir, ...(resume ? ['--resume'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lastStep = 0;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killSoon = () => setTimeout(() => child.kill('SIGKILL'), kill!.delayMs);
  createInterface({ input: child.stdout }).on('line', (line) => {
    lastStep = (JSON.parse(line) as { step: number }).step;
    if (kill?.kind === 'step' && lastStep === kill.step) killSoon();
  });
  // Temporary directories an earlier, killed attempt left behind; this one's are new.
  const stale = new Set(temporaries(dir));
  const fresh = () => temporaries(dir).filter((name) => !stale.has(name));
  let watcher: FSWatcher | undefined;
  if (kill?.kind === 'write') {
    // Told by the file system (inotify) the moment a temporary checkpoint directory appears.
    const writes = new Set<string>();
    watcher = watch(join(dir, CHECKPOINTS_DIR), (_, name) => {
      if (!name?.startsWith('.tmp-') || stale.has(name) || writes.has(name)) return;
      writes.add(name);
      if (writes.size === kill.write) killSoon();
    });
  }
  return new Promise<{ lastStep: number; finished: boolean; insideWrite: boolean }>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      watcher?.close();
      if (signal === 'SIGKILL' || code === 0) resolve({ lastStep, finished: code === 0, insideWrite: fresh().length > 0 });
      else reject(new Error(`mambalab train exited with ${code ?? signal}:\n${stderr}`));
    });
  });
}

/** What a run directory must always allow: its config, its metrics, and every checkpoint it lists (the one `checkpoint` names among them) read back whole. */
function unreadableParts(dir: string): string[] {
  const problems: string[] = [];
  try {
    JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    problems.push(`config.json: ${(e as Error).message}`);
  }
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).forEach((line, i) => {
    try {
      JSON.parse(line);
    } catch {
      problems.push(`metrics.jsonl line ${i + 1} does not parse: ${line.slice(0, 80)}`);
    }
  });
  const checkpoints = listCheckpoints(dir);
  for (const c of checkpoints) {
    try {
      new Trainer(loadModel(c.dir, { device: 'cpu' })).loadCheckpoint(c.dir);
    } catch (e) {
      problems.push(`${c.dir}: ${(e as Error).message}`);
    }
  }
  const link = join(dir, NEWEST_CHECKPOINT);
  if (checkpoints.length > 0 && (!existsSync(link) || !checkpoints.some((c) => realpathSync(c.dir) === realpathSync(link)))) {
    problems.push(`${NEWEST_CHECKPOINT} does not name a complete checkpoint`);
  }
  return problems;
}

function metricsLines(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => {
    const m = JSON.parse(line) as Record<string, unknown>;
    for (const key of WALL_CLOCK_KEYS) delete m[key];
    return m;
  });
}

/** Where the killed run differs from the uninterrupted one: the final checkpoint's files, then the metrics. */
function differencesFrom(reference: string, dir: string): string[] {
  const found: string[] = [];
  for (const file of ['model.safetensors', 'optimizer.safetensors', 'config.json']) {
    if (!readFileSync(join(reference, NEWEST_CHECKPOINT, file)).equals(readFileSync(join(dir, NEWEST_CHECKPOINT, file)))) found.push(`checkpoint/${file} differs`);
  }
  const state = (d: string) => {
    const { elapsedS: _, ...rest } = JSON.parse(readFileSync(join(d, NEWEST_CHECKPOINT, 'trainer.json'), 'utf8')) as Record<string, unknown>;
    return JSON.stringify(rest);
  };
  if (state(reference) !== state(dir)) found.push('checkpoint/trainer.json differs (elapsedS aside)');
  const [a, b] = [metricsLines(reference), metricsLines(dir)];
  if (a.length !== b.length) found.push(`metrics.jsonl has ${b.length} lines, the uninterrupted run ${a.length}`);
  a.forEach((line, i) => {
    if (JSON.stringify(line) !== JSON.stringify(b[i])) found.push(`metrics.jsonl line ${i + 1}: ${JSON.stringify(b[i])} vs ${JSON.stringify(line)}`);
  });
  return found.slice(0, 10);
}

export async function killAndResume(o: KillResumeOptions): Promise<KillResumeReport> {
  const started = performance.now();
  const reference = join(o.work, 'uninterrupted');
  const [program, ...before] = o.cli;
  const straight = spawnSync(program, [...before, ...o.train, '--out', reference], { encoding: 'utf8' });
  if (straight.status !== 0) throw new Error(`the uninterrupted run failed (${straight.status}):\n${straight.stderr}`);

  const dir = join(o.work, 'killed');
  const random = seeded(o.seed);
  const kills: Kill[] = [];
  const unreadable: string[] = [];
  let resumedFrom = 0;
  for (let n = 0; ; n++) {
    const kind = n % 2 === 0 ? 'write' : 'step';
    // Each attempt gets some way (a few steps, or past a write or two) before it is killed;
    // step kills come before the last step, so that the attempt cannot finish first.
    const plan: KillAt | undefined = n < o.kills
      ? { kind, step: Math.min(o.steps - 1, resumedFrom + 1 + random(8)), write: 1 + random(3), delayMs: random(kind === 'write' ? (o.writeDelayMs ?? 10) + 1 : 20) }
      : undefined;
    const result = await attempt(o, dir, n > 0, plan);
    if (result.finished) {
      return { kills, attempts: n + 1, differences: differencesFrom(reference, dir), unreadable, wallClockKeys: WALL_CLOCK_KEYS, seconds: (performance.now() - started) / 1000 };
    }
    kills.push({ attempt: n + 1, kind, resumedFrom, lastStep: result.lastStep, insideWrite: result.insideWrite });
    unreadable.push(...unreadableParts(dir).map((p) => `after kill ${n + 1}: ${p}`));
    resumedFrom = listCheckpoints(dir).at(-1)?.step ?? 0;
  }
}
