// Fuzzing the readers of what training leaves on disk: runs (loadRun: run.json, metrics.arrow,
// validation.arrow, experts.arrow) and checkpoint directories (loadModel and
// trainer.loadCheckpoint), from runs that trainRun recorded.
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { inspect } from 'node:util';

import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';

import { openDataset } from '../../../kernel/src/data/dataset.js';
import type { TokenSource } from '../../../kernel/src/data/source.js';
import { toBundle } from '../../../kernel/src/display/bundle.js';
import { toDisplayDoc } from '../../../kernel/src/display/show.js';
import { createModel, loadModel, type Model } from '../../../kernel/src/models/model.js';
import type { ModelConfig } from '../../../kernel/src/models/config.js';
import { expertLayers } from '../../../kernel/src/train/metrics.js';
import { CHECKPOINTS_DIR, NEWEST_CHECKPOINT, newestCheckpoint } from '../../../kernel/src/train/checkpoints.js';
import { EXPERTS_FILE, loadRun, METRICS_FILE, RUN_FILE, VALIDATION_FILE, type Run } from '../../../kernel/src/train/runs.js';
import { trainRun } from '../../../kernel/src/train/train-run.js';
import { Trainer } from '../../../kernel/src/train/trainer.js';
import { fuzzTargets, judgeRead, type CaseResult, type FuzzTarget } from '../../support/fuzz.js';
import { arrowLengthFields, mutateBytes, mutateJson, mutateSafetensors, pick, writeMutated, type Mutation, type Random } from '../../support/mutate.js';
import { schemaErrors } from '../../support/schema.js';
import { writeCountingDataset } from '../data/helpers.js';
import { TINY_MODEL, TINY_MOE, TINY_TRAINER, tinyData } from '../../support/tiny.js';

interface Recorded {
  dir: string;
  /** What it trained on: a checkpoint resumes on the same kind of data (its sampler state is that data's). */
  data: () => TokenSource;
}

let recorded: Promise<Recorded[]> | undefined;

/**
 * Two runs trainRun recorded, each with its checkpoint, made once: a Mamba on a prepared dataset
 * (its sampler state an epoch and a position) and an MoE-Mamba (with experts.arrow) on tokens in
 * memory (a generator's state).
 */
function recordedRuns(dir: string): Promise<Recorded[]> {
  recorded ??= recordRuns(dir);
  return recorded;
}

async function recordRuns(dir: string): Promise<Recorded[]> {
  const prepared = join(dir, 'dataset');
  writeCountingDataset(prepared, Array.from({ length: 40 }, (_, i) => 20 + (i % 7)), 15, 256);
  const runs: [Partial<ModelConfig>, () => TokenSource][] = [
    [TINY_MODEL, () => openDataset(prepared)],
    [TINY_MOE, () => tinyData()],
  ];
  return Promise.all(
    runs.map(async ([config, data], i) => {
      const trainer = new Trainer(createModel(config), TINY_TRAINER);
      const run = await trainRun(trainer, data(), { steps: 6, dir: join(dir, `run-${i}`), evalEvery: 2, evalBatches: 1, expertsEvery: 2 });
      return { dir: run.dir, data };
    }),
  );
}

/** A valid Arrow file of metrics that are wrong: a column missing, of text, out of order, negative or not finite. */
function wrongMetrics(rand: Random, bytes: Buffer): Mutation {
  const table = tableFromIPC(bytes); // the fixture's own, intact file
  const columns = Object.fromEntries(table.schema.fields.map((f) => [f.name, Array.from(table.getChild(f.name)!.toArray() as ArrayLike<number>, Number)]));
  const name = pick(rand, Object.keys(columns));
  const values = columns[name]!;
  const at = rand.int(values.length);
  const kind = pick(rand, ['drop column', 'text column', 'swap rows', 'negative', 'NaN', 'infinite', 'fraction', 'huge']);
  const typed: Record<string, Float64Array | Int32Array | string[]> = Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, Float64Array.from(v)]));
  switch (kind) {
    case 'drop column':
      delete typed[name];
      break;
    case 'text column':
      typed[name] = values.map(String);
      break;
    case 'swap rows': {
      const other = rand.int(values.length);
      [values[at], values[other]] = [values[other]!, values[at]!];
      typed[name] = Float64Array.from(values);
      break;
    }
    default:
      values[at] = { negative: -1 - rand.int(100), NaN: Number.NaN, infinite: Number.POSITIVE_INFINITY, fraction: 0.5, huge: 2 ** 60 }[kind]!;
      typed[name] = Float64Array.from(values);
  }
  return { what: `${kind} in ${name}${kind === 'drop column' || kind === 'text column' ? '' : ` at row ${at}`}`, value: Buffer.from(tableToIPC(tableFromArrays(typed), 'file')) };
}

const increasing = (values: number[], from: number) => values.every((v, i) => Number.isInteger(v) && v >= from && (i === 0 || v > values[i - 1]!));

/** What a loaded run must be: steps in order, counts whole and non-negative, a document the extension takes. */
function runProblem(run: Run): string | undefined {
  if (!increasing(run.train.step, 1)) return `train steps ${JSON.stringify(run.train.step)}`;
  if (!increasing(run.validation.step, 0)) return `validation steps ${JSON.stringify(run.validation.step)}`;
  for (const [name, column] of [['tokens', run.train.tokens], ['wallS', run.train.wallS]] as const) {
    if (!column.every((v) => Number.isFinite(v) && v >= 0)) return `train ${name} ${JSON.stringify(column)}`;
  }
  const experts = run.experts;
  if (experts) {
    if (JSON.stringify(experts.layers) !== JSON.stringify(expertLayers(run.config.model))) return `expert layers ${experts.layers} for pattern ${run.config.model.pattern}`;
    if (experts.numExperts !== run.config.model.numExperts) return `${experts.numExperts} experts, the config has ${run.config.model.numExperts}`;
    if (!increasing(experts.step, 1)) return `expert steps ${JSON.stringify(experts.step)}`;
    const counts = [...experts.counts.flat(2), ...(experts.dropped ?? []).flat()];
    if (!counts.every((c) => Number.isSafeInteger(c) && c >= 0)) return `expert counts ${JSON.stringify(counts).slice(0, 100)}`;
  }
  const doc = toDisplayDoc(run);
  toBundle(doc);
  inspect(run);
  const invalid = schemaErrors(JSON.parse(JSON.stringify(doc)));
  return invalid ? `its display document is invalid: ${invalid.slice(0, 200)}` : undefined;
}

const runs: FuzzTarget = {
  name: 'loadRun',
  cases: 600,
  async setup(dir) {
    const sources = (await recordedRuns(dir)).map((r) => r.dir);
    return (rand, caseDir) => {
      const run = join(caseDir, 'run');
      cpSync(pick(rand, sources), run, { recursive: true, filter: (path) => ![CHECKPOINTS_DIR, NEWEST_CHECKPOINT].includes(basename(path)) });
      const present = readdirSync(run);
      const name = pick(rand, [RUN_FILE, RUN_FILE, METRICS_FILE, VALIDATION_FILE, ...(present.includes(EXPERTS_FILE) ? [EXPERTS_FILE] : []), 'the folder']);
      const file = name === 'the folder' ? run : join(run, name);
      let what: string;
      if (name === RUN_FILE) {
        const text = readFileSync(file, 'utf8');
        what = writeMutated(rand, file, () => mutateJson(rand, JSON.parse(text), text));
      } else if (name === 'the folder') {
        what = writeMutated(rand, file, () => ({ what: 'a file in place of the folder', value: Buffer.from('{}') }));
      } else {
        const bytes = readFileSync(file);
        what = writeMutated(rand, file, () => (rand.next() < 0.7 ? mutateBytes(rand, bytes, arrowLengthFields(bytes)) : wrongMetrics(rand, bytes)));
      }
      return judgeRead(`${name}: ${what}`, [file], () => loadRun(run), runProblem);
    };
  },
};

/** Every parameter and AdamW moment of a model, to see that a refused checkpoint changed nothing. */
function modelState(model: Model): string {
  return model
    .parameters()
    .flatMap((p) => (['value', 'adam_m', 'adam_v'] as const).map((slot) => Buffer.from(model.readSlot(p.name, slot).buffer).toString('base64')))
    .join();
}

const CHECKPOINT_FILES = ['trainer.json', 'trainer.json', 'optimizer.safetensors', 'optimizer.safetensors', 'model.safetensors', 'config.json'];

const checkpoints: FuzzTarget = {
  name: 'loadCheckpoint',
  cases: 300,
  async setup(dir) {
    const sources = await recordedRuns(dir);
    return async (rand, caseDir): Promise<CaseResult> => {
      const { dir: run, data } = pick(rand, sources);
      const source = newestCheckpoint(run)!.dir;
      const resumed = (trainer: Trainer) => resumedProblem(trainer, data());
      const checkpoint = join(caseDir, 'checkpoint');
      cpSync(source, checkpoint, { recursive: true });
      const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as ModelConfig;
      const name = pick(rand, [...CHECKPOINT_FILES, 'the folder']);
      const file = name === 'the folder' ? checkpoint : join(checkpoint, name);
      let what: string;
      if (name.endsWith('.json')) {
        const text = readFileSync(file, 'utf8');
        what = writeMutated(rand, file, () => mutateJson(rand, JSON.parse(text), text));
      } else if (name.endsWith('.safetensors')) {
        const bytes = readFileSync(file);
        what = writeMutated(rand, file, () => mutateSafetensors(rand, bytes));
      } else {
        rmSync(file, { recursive: true });
        what = writeMutated(rand, file, () => ({ what: 'a file in place of the folder', value: Buffer.from('{}') }));
      }
      // Resuming as a notebook does: the model from the checkpoint (loadModel) or made anew, then the trainer's state.
      if (rand.next() < 0.3) {
        return judgeRead(`${name}: ${what}`, [file], () => {
          const trainer = new Trainer(loadModel(checkpoint), TINY_TRAINER);
          trainer.loadCheckpoint(checkpoint);
          return trainer;
        }, resumed);
      }
      const trainer = new Trainer(createModel(config), TINY_TRAINER);
      const before = { state: modelState(trainer.model), options: JSON.stringify(trainer.options), step: trainer.stepCount };
      const result = await judgeRead(`${name}: ${what}`, [file], () => (trainer.loadCheckpoint(checkpoint), trainer), resumed);
      const after = { state: modelState(trainer.model), options: JSON.stringify(trainer.options), step: trainer.stepCount };
      if (result.outcome === 'refused' && JSON.stringify(after) !== JSON.stringify(before)) {
        return { ...result, problem: `a refused checkpoint changed the trainer (${after.step !== before.step ? 'step' : after.options !== before.options ? 'options' : 'weights or moments'})` };
      }
      return result;
    };
  },
};

/** A trainer resumed from a checkpoint must be one a trainer could be, and train on `data`. */
async function resumedProblem(trainer: Trainer, data: TokenSource): Promise<string | undefined> {
  if (!Number.isSafeInteger(trainer.stepCount) || trainer.stepCount < 0) return `step ${trainer.stepCount}`;
  try {
    new Trainer(trainer.model, trainer.options);
  } catch (error) {
    return `its options are not a trainer's: ${(error as Error).message}`;
  }
  // Its loss may be anything: weights overwritten with huge but finite floats are still weights
  // (safetensors has no checksum), and the engine skips a step whose loss is not finite.
  const fitted = await trainer.fit(data, { steps: 1, evalBatches: 1 }).catch((error: Error) => error);
  return fitted instanceof Error ? `it cannot train on: ${fitted.name}: ${fitted.message}` : undefined;
}

fuzzTargets(import.meta.filename, [runs, checkpoints]);
