import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';

import { benchOutput, benchResultsFile } from '../../../kernel/src/cli/bench.js';
import { c4Lines, c4SampleRecords } from '../../../datasets/fixtures.js';
import { repoRoot, scratchDir } from '../../helpers.js';
import { NEOX_TOKENIZER } from '../corpus/helpers.js';

const cli = join(repoRoot, 'kernel', 'src', 'cli', 'main.ts');

test('bench tokenize --json: every implementation counts the same tokens; speeds and the sampler share are reported', (t) => {
  const dir = scratchDir();
  const corpus = join(dir, 'c4-100.json.gz');
  writeFileSync(corpus, gzipSync(c4Lines(c4SampleRecords().slice(0, 100))));
  const out = join(dir, 'result.json');
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', 'tokenize', '--json', '--out', out, '--note', 'a test run', '--corpus', corpus, '--passes', '2', '--threads', '2', '--tokenizer-file', NEOX_TOKENIZER], {
    encoding: 'utf8',
    cwd: repoRoot,
    timeout: 5 * 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), result);
  assert.equal(result.corpus.documents, 100);
  assert.equal(result.note, 'a test run');
  for (const name of ['gpt2', 'neox']) {
    const timings = result.timings.filter((x: { tokenizer: string }) => x.tokenizer === name);
    const kinds = timings.map((x: { kind: string }) => x.kind);
    assert.deepEqual(kinds, name === 'gpt2' ? ['mambalab', 'mambalab-1-thread', 'hf-tokenizers', 'gpt-tokenizer'] : ['mambalab', 'mambalab-1-thread', 'hf-tokenizers']);
    const counts = new Set(timings.map((x: { tokens: number }) => x.tokens));
    assert.equal(counts.size, 1, `${name}: implementations disagree on the token count: ${JSON.stringify(timings)}`);
    for (const x of timings) {
      for (const key of ['mbPerS', 'mbPerCpuS']) assert.ok(x[key].length === 2 && x[key].every((v: number) => v > 0), JSON.stringify(x));
    }
    const warm = result.summary[name].warmWall;
    const ours = timings.find((x: { kind: string }) => x.kind === 'mambalab');
    const theirs = timings.find((x: { kind: string }) => x.kind === 'hf-tokenizers');
    assert.deepEqual(warm, { mambalab: ours.mbPerS[1], hfTokenizers: theirs.mbPerS[1], ratio: Number((ours.mbPerS[1] / theirs.mbPerS[1]).toFixed(2)) });
  }
  const s = result.sampler;
  assert.ok(s.samplerUsPerBatch > 0 && s.trainStepMsMedian > 0);
  // The share is computed before the printed times are rounded: agree to rounding, not digit for digit.
  const share = s.samplerUsPerBatch / 1000 / s.trainStepMsMedian;
  assert.ok(Math.abs(s.samplerShareOfStep - share) <= 0.01 * share, `share ${s.samplerShareOfStep} vs ${share}`);
  t.diagnostic(`gpt2 ${JSON.stringify(result.summary.gpt2.warmWall)}; sampler ${s.samplerUsPerBatch} µs vs step ${s.trainStepMsMedian} ms`);
});

test('bench with an unknown name lists the benches', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', 'nope'], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /bench: expected one of train, scan, attention, generate, tokenize, checkpoint, got 'nope'/);
});

test('bench results are filed as <date>-<gpu>-<name>.json, the GPU by its short name', () => {
  assert.equal(benchResultsFile({ name: 'train-mamba-v1', gpu: 'NVIDIA H100 80GB HBM3', device: 'cuda', date: '2026-11-24' }, 'train'), '2026-11-24-h100-train-mamba-v1.json');
  assert.equal(benchResultsFile({ name: 'train-mamba-tiny', gpu: 'none (CPU: AMD EPYC, 2 threads)', device: 'cpu', date: '2026-11-24' }, 'train'), '2026-11-24-cpu-train-mamba-tiny.json');
  assert.equal(benchResultsFile({ name: 'scan', gpu: 'NVIDIA H200', date: '2026-11-23' }, 'scan'), '2026-11-23-h200-scan.json');
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(benchResultsFile({ bench: 'tokenize' } as object, 'tokenize'), `${today}-cpu-tokenize.json`, 'no name, GPU or date: the bench, cpu, today');
});

test('bench output: one result indented, a bench of several shapes as JSON lines; the note in each', () => {
  const one = benchOutput({ name: 'scan', fwd_ms: 1 }, 'idle machine');
  assert.equal(one.lines, '{"note":"idle machine","name":"scan","fwd_ms":1}\n');
  assert.equal(one.text, JSON.stringify({ note: 'idle machine', name: 'scan', fwd_ms: 1 }, null, 2) + '\n');
  const shapes = benchOutput([{ name: 'attention', gpu: 'NVIDIA H200', shape: { len: 1024 } }, { name: 'attention', shape: { len: 2048 } }]);
  assert.equal(shapes.lines, '{"name":"attention","gpu":"NVIDIA H200","shape":{"len":1024}}\n{"name":"attention","shape":{"len":2048}}\n');
  assert.equal(shapes.text, shapes.lines, 'files of several shapes are JSON lines too');
  assert.equal(shapes.first.gpu, 'NVIDIA H200', 'the file is named by the first');
  assert.equal(benchOutput([{ a: 1 }], 'n').lines, '{"note":"n","a":1}\n');
});
