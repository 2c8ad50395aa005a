// `mambalab bench <name>`: benchmarks that print their measurements as JSON (--json) and can
// write them to a file for bench/results/ (--out). Add a bench to BENCHES.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { MambalabError } from '../errors.js';
import { benchAttention, benchAttentionUsage } from './bench-attention.js';
import { benchCheckpoint, benchCheckpointUsage } from './bench-checkpoint.js';
import { benchGenerate, benchGenerateUsage } from './bench-generate.js';
import { benchScan, benchScanUsage } from './bench-scan.js';
import { benchTokenize, benchTokenizeUsage } from './bench-tokenize.js';
import { benchTrain, benchTrainUsage } from './bench-train.js';
import { gpuShortName } from './gpus.js';

interface Bench {
  summary: string;
  usage: string;
  /** Runs with the bench's own flags; `log` shows progress on stderr. Returns the results: one object, or one per shape. */
  run: (argv: string[], log: (line: string) => void) => Promise<unknown>;
}

const BENCHES: Record<string, Bench> = {
  train: { summary: 'steady-state training throughput of a preset (tokens/s, step time, FLOPs)', usage: benchTrainUsage, run: benchTrain },
  scan: { summary: 'the fused selective scan on the GPU: forward and forward+backward ms', usage: benchScanUsage, run: benchScan },
  attention: { summary: 'causal attention on the GPU: forward and forward+backward ms and TFLOP/s per sequence length', usage: benchAttentionUsage, run: benchAttention },
  generate: { summary: 'ms per generated token at batch 1 after prompts of several lengths (the recurrent decode step)', usage: benchGenerateUsage, run: benchGenerate },
  tokenize: { summary: 'tokenizer MB/s (GPT-2, NeoX) beside HF tokenizers, and the sampler against a training step', usage: benchTokenizeUsage, run: benchTokenize },
  checkpoint: {
    summary: 'seconds to write (atomically) and load a checkpoint of a preset; what the non-finite guard costs a step',
    usage: benchCheckpointUsage,
    run: benchCheckpoint,
  },
};

/** Removes a flag (and its value) from argv; its value, '' for a switch, undefined when absent. */
function take(argv: string[], flag: string, hasValue: boolean): string | undefined {
  const at = argv.indexOf(flag);
  if (at < 0) return undefined;
  const value = hasValue ? argv[at + 1] : '';
  if (value === undefined || value.startsWith('--')) throw new MambalabError(`${flag}: expected a value`);
  argv.splice(at, hasValue ? 2 : 1);
  return value;
}

/**
 * The file bench/results/ keeps results in: `<date>-<gpu>-<name>.json`, the GPU by its short
 * name ("h100"), "cpu" for runs without one; the bench's own name when the results have none.
 */
export function benchResultsFile(results: { date?: unknown; gpu?: unknown; device?: unknown; name?: unknown }, bench: string): string {
  const date = typeof results.date === 'string' ? results.date : new Date().toISOString().slice(0, 10);
  const gpu = results.device === 'cpu' || typeof results.gpu !== 'string' ? 'cpu' : gpuShortName(results.gpu);
  const name = typeof results.name === 'string' ? results.name : bench;
  return `${date}-${gpu}-${name}.json`;
}

export const usage = `mambalab bench <name> [--json] [--out FILE|DIR] [--note TEXT] [bench options]
  --json       print the results as one JSON object on stdout (benches of several shapes: one line each)
  --out FILE   also write them to FILE; given a directory (bench/results), to DIR/<date>-<gpu>-<name>.json
  --note TEXT  a note kept with the results (the machine, what else ran)

${Object.entries(BENCHES)
  .map(([name, b]) => `${name}: ${b.summary}\n${b.usage}`)
  .join('\n\n')}`;

export async function bench(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const b = name ? BENCHES[name] : undefined;
  if (!name || !b) throw new MambalabError(`bench: expected one of ${Object.keys(BENCHES).join(', ')}${name ? `, got '${name}'` : ''}`);
  // --json, --out and --note are everyone's; the rest go to the bench.
  const own = [...rest];
  const json = take(own, '--json', false) !== undefined;
  const out = take(own, '--out', true);
  const note = take(own, '--note', true);
  const measured = await b.run(own, (line) => process.stderr.write(line + '\n'));
  const { first, lines, text } = benchOutput(measured, note);
  if (out) {
    const intoDirectory = existsSync(out) && statSync(out).isDirectory();
    writeFileSync(intoDirectory ? join(out, benchResultsFile(first, name)) : out, text);
  }
  if (json) process.stdout.write(lines);
  else if (!out) process.stdout.write(text);
}

/**
 * A bench's results as printed: `lines` for --json (one line; one per shape for a bench of
 * several shapes, as bench/reference's scripts read them with --ours), `text` for reading and
 * for files (indented, or those lines), `first` to name the file by. The note goes in each.
 */
export function benchOutput(measured: unknown, note?: string): { first: Record<string, unknown>; lines: string; text: string } {
  const annotate = (r: unknown) => (note ? { note, ...(r as object) } : r) as Record<string, unknown>;
  const results = Array.isArray(measured) ? measured.map(annotate) : [annotate(measured)];
  const lines = results.map((r) => JSON.stringify(r) + '\n').join('');
  return { first: results[0]!, lines, text: Array.isArray(measured) ? lines : JSON.stringify(results[0], null, 2) + '\n' };
}
