// Seeded fuzzing of the readers of what users hand us. A test file lists targets (a reader, the
// valid inputs it starts from, how a case damages them and what a right answer is) and calls
// fuzzTargets(), which runs every case in one child process: a case that hangs is caught by a
// watchdog that kills the child, and one that takes the process down (a native abort, an
// uncaught exception) is named rather than losing the test file. Each case depends only on
// (seed, target, index), so any case replays alone:
//   FUZZ_SEED=<seed> FUZZ_TARGET=<target> FUZZ_CASE=<index> node --import tsx --test <file>
// (FUZZ_SHOW=<n> lists up to n failed cases instead of 12.)
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { test } from 'node:test';

import { hash32 } from '../../kernel/src/data/permutation.js';
import { SeededRandom } from '../../kernel/src/data/random.js';
import { MambalabError } from '../../kernel/src/errors.js';
import type { Random } from './mutate.js';

export interface CaseResult {
  /** What the case did to the input. */
  what: string;
  /** Whether the reader accepted the input or refused it. */
  outcome: 'read' | 'refused';
  /** The oracle's complaint, when the answer was wrong. */
  problem?: string;
}

/** Runs one case in `caseDir` (fresh and empty) with its own generator. */
export type CaseRunner = (rand: Random, caseDir: string) => CaseResult | Promise<CaseResult>;

export interface FuzzTarget {
  name: string;
  cases: number;
  /** Once per run: writes the valid inputs under `dir` (made for it), and returns the case runner. */
  setup(dir: string): CaseRunner | Promise<CaseRunner>;
}

interface Report {
  name: string;
  cases: number;
  read: number;
  refused: number;
  ms: number;
  slowest: { index: number; what: string; ms: number };
  problems: { index: number; what: string; problem: string }[];
}

const SEED = Number(process.env['FUZZ_SEED'] ?? 17);
/** One target's name, or several separated by commas. */
const ONLY_TARGETS = process.env['FUZZ_TARGET']?.split(',');
const ONLY_CASE = process.env['FUZZ_CASE'];
/** A case that runs this long is hung (real cases take milliseconds; the machine may be busy). FUZZ_HANG_MS: the harness's own test. */
const HANG_MS = Number(process.env['FUZZ_HANG_MS'] ?? 20_000);
const SETUP_MS = 120_000;
/** A message longer than this buries what it says. */
const MAX_MESSAGE = 1000;

/** Where the child is, in the file the parent watches: a hang or a crash is reported with it. */
let progressFile: string | undefined;
let progressAt = '';
function markProgress(at: string): void {
  progressAt = at;
  if (progressFile) writeFileSync(progressFile, at);
}

function caseRandom(target: string, index: number): Random {
  let key = hash32(SEED >>> 0) ^ hash32(index + 0x9e3779b9);
  for (let i = 0; i < target.length; i++) key = hash32(key ^ target.charCodeAt(i));
  return new SeededRandom(key);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `the value ${String(error)}`;
}

/** Whether a message names a file: by its path, or by its folder and its name ("runs/x: no run.json"). */
function names(message: string, file: string): boolean {
  return message.includes(file) || (message.includes(dirname(file)) && message.includes(basename(file)));
}

/**
 * The oracle for a reader of files: it reads the input (and `check` finds nothing wrong with
 * what came back), or it throws a MambalabError whose message names one of `files`. Another
 * error, or a message that names none of them, is the case's problem.
 */
export async function judgeRead<T>(
  what: string,
  files: readonly string[],
  read: () => T | Promise<T>,
  check?: (value: T) => string | undefined | Promise<string | undefined>,
): Promise<CaseResult> {
  markProgress(`${progressAt}: ${what}`);
  let value: T;
  try {
    value = await read();
  } catch (error) {
    if (!(error instanceof MambalabError)) return { what, outcome: 'refused', problem: `threw ${describe(error)}, not a MambalabError` };
    if (!files.some((file) => names(error.message, file))) return { what, outcome: 'refused', problem: `the message names none of ${files.join(', ')}: ${error.message}` };
    if (error.message.length > MAX_MESSAGE) return { what, outcome: 'refused', problem: `a ${error.message.length}-character message: ${error.message.slice(0, 300)}…` };
    return { what, outcome: 'refused' };
  }
  const problem = await check?.(value);
  return { what, outcome: 'read', ...(problem ? { problem: `read without complaint, but ${problem}` } : {}) };
}

async function runTarget(target: FuzzTarget, root: string): Promise<Report> {
  markProgress(`${target.name}: setup`);
  const fixture = join(root, target.name);
  mkdirSync(fixture, { recursive: true });
  const runCase = await target.setup(fixture);
  const report: Report = { name: target.name, cases: 0, read: 0, refused: 0, ms: 0, slowest: { index: -1, what: '', ms: 0 }, problems: [] };
  const indices = ONLY_CASE === undefined ? Array.from({ length: target.cases }, (_, i) => i) : [Number(ONLY_CASE)];
  const caseDir = join(root, 'case');
  const started = performance.now();
  for (const index of indices) {
    markProgress(`${target.name}: case ${index}`);
    rmSync(caseDir, { recursive: true, force: true });
    mkdirSync(caseDir);
    const start = performance.now();
    let result: CaseResult;
    try {
      result = await runCase(caseRandom(target.name, index), caseDir);
    } catch (error) {
      result = { what: '(unknown)', outcome: 'refused', problem: `the case itself failed: ${(error as Error).stack ?? String(error)}` };
    }
    const ms = performance.now() - start;
    report.cases++;
    report[result.outcome]++;
    if (ms > report.slowest.ms) report.slowest = { index, what: result.what, ms };
    if (result.problem) report.problems.push({ index, what: result.what, problem: result.problem });
  }
  report.ms = performance.now() - started;
  return report;
}

/** The child: runs the targets and sends each report to the parent. */
async function runChild(targets: readonly FuzzTarget[]): Promise<void> {
  progressFile = process.env['FUZZ_PROGRESS'];
  const root = mkdtempSync(join(tmpdir(), 'mambalab-fuzz-'));
  try {
    for (const target of targets) {
      if (ONLY_TARGETS && !ONLY_TARGETS.includes(target.name)) continue;
      const report = await runTarget(target, root);
      await new Promise<void>((resolve, reject) => process.send!(report, (error: Error | null) => (error ? reject(error) : resolve())));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  process.disconnect();
}

interface ChildRun {
  reports: Map<string, Report>;
  /** How the child ended, when it did not finish every target. */
  failure?: string;
}

/** Runs this file as the child, kills it when one case (or the setup) runs past its limit. */
function supervise(file: string): Promise<ChildRun> {
  const progress = join(tmpdir(), `mambalab-fuzz-progress-${process.pid}-${Date.now()}`);
  writeFileSync(progress, 'starting');
  const env: NodeJS.ProcessEnv = { ...process.env, FUZZ_CHILD: '1', FUZZ_PROGRESS: progress };
  delete env['NODE_TEST_CONTEXT']; // the child runs cases, not tests
  const child = fork(file, [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const reports = new Map<string, Report>();
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('message', (report: Report) => reports.set(report.name, report));
  let where = 'starting';
  let since = Date.now();
  let hung: string | undefined;
  const watchdog = setInterval(() => {
    const now = readFileSync(progress, 'utf8');
    if (now !== where) [where, since] = [now, Date.now()];
    const limit = /setup|starting/.test(where) ? SETUP_MS : HANG_MS;
    if (Date.now() - since > limit) {
      hung = `${where} still running after ${limit / 1000} s: a hang`;
      child.kill('SIGKILL');
    }
  }, 250);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      where = readFileSync(progress, 'utf8');
      rmSync(progress, { force: true });
      const ended = hung ?? (code === 0 ? undefined : `the process ended (${signal ?? `exit code ${code}`}) in ${where}:\n${output}`);
      resolve({ reports, ...(ended ? { failure: ended } : {}) });
    });
  });
}

function summary(report: Report, file: string): string {
  const { slowest } = report;
  return (
    `${report.name}: ${report.cases} cases, seed ${SEED}: ${report.read} read, ${report.refused} refused, in ${(report.ms / 1000).toFixed(1)} s ` +
    `(slowest: case ${slowest.index}, ${slowest.what}, ${slowest.ms.toFixed(0)} ms). ` +
    `Replay a case: FUZZ_SEED=${SEED} FUZZ_TARGET=${report.name} FUZZ_CASE=<index> node --import tsx --test ${relative(process.cwd(), file)}`
  );
}

/**
 * In a test file: one test per target, all run by one child process (this file again, with
 * FUZZ_CHILD set). Each test fails on any case the oracle complained of, on a hang or a crash.
 */
export function fuzzTargets(file: string, targets: readonly FuzzTarget[]): void {
  if (process.env['FUZZ_CHILD']) {
    void runChild(targets);
    return;
  }
  let run: Promise<ChildRun> | undefined;
  for (const target of targets) {
    const skip = ONLY_TARGETS !== undefined && !ONLY_TARGETS.includes(target.name);
    test(`fuzz: ${target.name}`, { skip }, async (t) => {
      run ??= supervise(file);
      const { reports, failure } = await run;
      const report = reports.get(target.name);
      if (!report) assert.fail(`${target.name} did not finish: ${failure ?? 'no report'}`);
      t.diagnostic(summary(report, file));
      const shown = report.problems.slice(0, Number(process.env['FUZZ_SHOW'] ?? 12)).map((p) => `case ${p.index} (${p.what}): ${p.problem}`);
      assert.equal(report.problems.length, 0, `${report.problems.length} of ${report.cases} cases went wrong (seed ${SEED}):\n${shown.join('\n')}`);
      if (ONLY_CASE === undefined) assert.ok(report.refused > 0, 'no case was refused: the mutations did not reach the reader');
    });
  }
}
