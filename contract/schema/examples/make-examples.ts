// Writes the example bundles next to this file: one per plot kind, with values shaped like the
// MoE-Mamba paper's v1 runs (C4, GPT-2 tokenizer, batch 256 × context 256 = 65,536 tokens a
// step, 100k steps; final smoothed losses Transformer 3.66, Mamba 3.51, MoE-Mamba 3.41, and
// MoE-Mamba reaching Mamba's final loss at ~46% of the steps) and 8 MoE layers × 32 experts.
// Synthetic but deterministic (seeded), so the files only change when this script does.
//   node --import tsx contract/schema/examples/make-examples.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expertBalance } from '../../src/balance.js';
import { ema } from '../../src/ema.js';

const here = import.meta.dirname;
const STEPS = 100_000;
const LOG_EVERY = 100;
const TOKENS_PER_STEP = 256 * 256;
const ALPHA = 0.001;
const NUM_EXPERTS = 32;
const CAPACITY = TOKENS_PER_STEP / NUM_EXPERTS; // capacity factor 1.0

// mulberry32 + Box-Muller: small, seeded, good enough for noise.
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

interface Curve {
  id: string;
  name: string;
  family: string;
  pattern: string;
  paramsTotal: number;
  paramsActive: number;
  /** smoothed loss at step t: floor + scale · (speed · t + 200)^-0.5 */
  floor: number;
  scale: number;
  speed: number;
  secondsPerStep: number;
  seed: number;
}

// Mamba: 3.51 at 100k. MoE-Mamba learns as Mamba at 2.17× the speed (reaches 3.51 at 46k) and so
// ends at 3.41; the Transformer ends at 3.66.
const MAMBA_SCALE = 0.1 / (100_200 ** -0.5 - 217_591 ** -0.5);
const MAMBA_FLOOR = 3.51 - MAMBA_SCALE * 100_200 ** -0.5;
const CURVES: Curve[] = [
  { id: 'transformer', name: 'Transformer', family: 'transformer', pattern: 'AF×8', paramsTotal: 25e6, paramsActive: 25e6, floor: 3.66 - MAMBA_SCALE * 1.06 * 100_200 ** -0.5, scale: MAMBA_SCALE * 1.06, speed: 1, secondsPerStep: 0.21, seed: 3 },
  { id: 'mamba', name: 'Mamba', family: 'mamba', pattern: 'M×16', paramsTotal: 27e6, paramsActive: 27e6, floor: MAMBA_FLOOR, scale: MAMBA_SCALE, speed: 1, secondsPerStep: 0.25, seed: 1 },
  { id: 'moe-mamba', name: 'MoE-Mamba (32 experts)', family: 'moe-mamba', pattern: 'ME×8', paramsTotal: 416e6, paramsActive: 26e6, floor: MAMBA_FLOOR, scale: MAMBA_SCALE, speed: 100 / 46, secondsPerStep: 0.31, seed: 2 },
];

function smoothLoss(curve: Curve, step: number): number {
  return curve.floor + curve.scale * (curve.speed * step + 200) ** -0.5;
}

function run(curve: Curve, logEvery: number): Record<string, unknown> {
  const noise = gaussian(random(curve.seed));
  const train = { step: [] as number[], tokens: [] as number[], wallS: [] as number[], loss: [] as number[] };
  for (let step = 0; step <= STEPS; step += logEvery) {
    const clean = Math.min(smoothLoss(curve, step), Math.log(50257));
    train.step.push(step);
    train.tokens.push(step * TOKENS_PER_STEP);
    train.wallS.push(round(step * curve.secondsPerStep, 1));
    train.loss.push(round(clean + 0.015 * noise(), 4)); // the mean over the logging interval
  }
  const validation = { step: [] as number[], tokens: [] as number[], wallS: [] as number[], loss: [] as number[] };
  for (let step = 5_000; step <= STEPS; step += 5_000) {
    validation.step.push(step);
    validation.tokens.push(step * TOKENS_PER_STEP);
    validation.wallS.push(round(step * curve.secondsPerStep + 12, 1));
    validation.loss.push(round(smoothLoss(curve, step) + 0.03 + 0.01 * noise(), 4));
  }
  return {
    id: curve.id,
    name: curve.name,
    status: 'done',
    model: { family: curve.family, pattern: curve.pattern, dModel: 512, paramsTotal: curve.paramsTotal, paramsActive: curve.paramsActive },
    flopsPerToken: 6 * curve.paramsActive,
    train,
    validation,
  };
}

type Train = { step: number[]; tokens: number[]; loss: number[] };

/** Where a smoothed curve first reaches `level` (the kernel computes this for real runs). */
function firstAt(positions: number[], smoothed: number[], level: number): number | null {
  const i = smoothed.findIndex((value) => value <= level);
  return i < 0 ? null : positions[i]!;
}

function comparison(baseline: Train, candidate: Train, axis: 'step' | 'tokens'): Record<string, unknown> {
  const b = ema(baseline.step, baseline.loss, ALPHA);
  const c = ema(candidate.step, candidate.loss, ALPHA);
  const final = round(b[b.length - 1]!, 4);
  const baselineAt = baseline[axis][baseline[axis].length - 1]!;
  const reaches = firstAt(candidate[axis], c, final);
  const curve = { loss: [] as number[], baselineAt: [] as number[], candidateAt: [] as number[], ratio: [] as number[] };
  for (let level = 4.5; level >= final - 1e-9; level -= 0.02) {
    const bAt = firstAt(baseline[axis], b, level);
    const cAt = firstAt(candidate[axis], c, level);
    if (bAt === null || cAt === null || cAt === 0) continue;
    curve.loss.push(round(level, 2));
    curve.baselineAt.push(bAt);
    curve.candidateAt.push(cAt);
    curve.ratio.push(round(bAt / cAt, 3));
  }
  return {
    baseline: 'mamba',
    candidate: 'moe-mamba',
    smoothing: ALPHA,
    axis,
    baselineFinalLoss: final,
    baselineAt,
    candidateReachesAt: reaches,
    ratio: reaches === null ? null : round(baselineAt / reaches, 3),
    curve,
  };
}

/**
 * Router counts of the 8 MoE layers of MoE-Mamba (pattern ME×8: layers 1, 3, …, 15): skewed early
 * in training, balanced later by the load-balancing loss, the last layers less so (as the
 * BlackMamba paper's routing figure shows). Dropped = tokens over each expert's capacity.
 */
function expertCounts(recordEvery: number): Record<string, unknown> {
  const next = random(7);
  const noise = gaussian(next);
  const layers = Array.from({ length: 8 }, (_, l) => 2 * l + 1);
  const preference = layers.map(() => Array.from({ length: NUM_EXPERTS }, () => noise()));
  const step: number[] = [];
  const counts: number[][][] = [];
  const dropped: number[][] = [];
  for (let s = 0; s <= STEPS; s += recordEvery) {
    step.push(s);
    const table: number[][] = [];
    const droppedRow: number[] = [];
    layers.forEach((_, l) => {
      const skew = 1.6 * Math.exp(-s / 8_000) + 0.12 + (l >= 6 ? 0.22 * (l - 5) : 0);
      const weights = preference[l]!.map((p) => Math.exp(skew * p + 0.05 * noise()));
      const total = weights.reduce((a, w) => a + w, 0);
      const row = weights.map((w) => Math.round((TOKENS_PER_STEP * w) / total));
      table.push(row);
      droppedRow.push(row.reduce((acc, count) => acc + Math.max(count - CAPACITY, 0), 0));
    });
    counts.push(table);
    dropped.push(droppedRow);
  }
  const experts = { layers, numExperts: NUM_EXPERTS, step, counts, dropped };
  // What the kernel sends beside the counts, to 4 digits so the file stays readable.
  const fourDigits = (table: Array<Array<number | null>>) => table.map((row) => row.map((v) => (v === null ? null : round(v, 4))));
  const { tokens, maxOverMean, cv, droppedFraction } = expertBalance(experts);
  return { ...experts, balance: { tokens, maxOverMean: fourDigits(maxOverMean), cv: fourDigits(cv), droppedFraction: fourDigits(droppedFraction) } };
}

/** JSON with each array of numbers on one line: readable, and diffs stay small. */
function format(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(/\[\s+([-\d.e+,\s]+?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`)}\n`;
}

function write(name: string, bundle: unknown): void {
  writeFileSync(join(here, name), format(bundle));
  console.log(`wrote ${name}`);
}

const runs = Object.fromEntries(CURVES.map((curve) => [curve.id, run(curve, LOG_EVERY)]));
write('loss.json', {
  version: 1,
  title: 'C4, 100k steps × 65,536 tokens: Transformer vs Mamba vs MoE-Mamba',
  runs: [runs['transformer'], runs['mamba'], runs['moe-mamba']],
  plots: [{ kind: 'loss', x: 'step', smoothing: ALPHA, showValidation: true, title: 'Training loss (EMA α = 0.001, as in the MoE-Mamba paper)' }],
});

const mamba = runs['mamba'] as { train: Train };
const moe = runs['moe-mamba'] as { train: Train };
write('savings.json', {
  version: 1,
  title: 'MoE-Mamba vs Mamba: training-step savings',
  runs: [runs['mamba'], runs['moe-mamba']],
  comparisons: [comparison(mamba.train, moe.train, 'step'), comparison(mamba.train, moe.train, 'tokens')],
  plots: [{ kind: 'savings', comparison: 0, title: 'Steps to reach Mamba’s final loss' }],
});

const moeCoarse = run(CURVES[2]!, 1_000);
write('experts.json', {
  version: 1,
  title: 'MoE-Mamba (32 experts): tokens per expert in the 8 MoE layers',
  runs: [{ ...moeCoarse, validation: undefined, experts: expertCounts(2_500) }],
  plots: [{ kind: 'experts', title: 'Expert token counts' }],
  progress: { runId: 'moe-mamba', step: 100_000, totalSteps: 100_000, loss: 3.41, tokensPerS: 211_000, etaS: 0 },
});

// The experts sweep: MoE-Mamba with 1 to 32 experts at 26M active parameters, ending at the
// paper's final losses (1: 3.56, 4: 3.55, 8: 3.51, 16: 3.45, 32: 3.41), logged every 5,000 steps.
const SWEEP = [
  [1, 3.56],
  [4, 3.55],
  [8, 3.51],
  [16, 3.45],
  [32, 3.41],
] as const;
const sweepRuns = SWEEP.map(([experts, final], i) =>
  run({ ...CURVES[2]!, id: `numExperts-${experts}`, name: `${experts} experts`, floor: final - MAMBA_SCALE * 100_200 ** -0.5, speed: 1, seed: 10 + i }, 5_000),
);
write('final.json', {
  version: 1,
  title: 'MoE-Mamba: final loss by number of experts',
  runs: sweepRuns.map((r) => ({ ...r, validation: undefined })),
  finalLoss: {
    field: 'numExperts',
    smoothing: ALPHA,
    points: SWEEP.map(([experts], i) => {
      const train = sweepRuns[i]!.train as Train;
      return { runId: `numExperts-${experts}`, value: experts, loss: Number(ema(train.step, train.loss, ALPHA).at(-1)!.toFixed(4)) };
    }),
  },
  plots: [{ kind: 'final', title: 'final loss by numExperts' }],
});
