// The kill test on the GPU host (tests/gpu/kill-test.sh runs it): the harness of the CPU test
// (tests/support/kill-resume.ts) around the carried CLI bundle, training on the GPU with
// --deterministic. Prints one JSON line (ok, kills, differences, unreadable, ...); exits 1 when
// the killed run differs from the uninterrupted one, a run directory was unreadable after a kill,
// or too few kills landed inside a checkpoint write. Bundled by tests/gpu/pack.sh:
//   node .gpu-carry/cli/dist/kill-test.mjs --node N --cli C --data D --work DIR
//     [--device cuda] [--model mamba --size tiny] [--steps 40] [--kills 8] [--seed 17]
//     [--batch-size 8 --seq-len 128] [--checkpoint-every 4]
import { parseArgs } from 'node:util';

import { killAndResume } from '../support/kill-resume.ts';

const { values: o } = parseArgs({
  options: {
    node: { type: 'string' },
    cli: { type: 'string' },
    data: { type: 'string' },
    work: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    model: { type: 'string', default: 'mamba' },
    size: { type: 'string', default: 'tiny' },
    steps: { type: 'string', default: '40' },
    kills: { type: 'string', default: '8' },
    seed: { type: 'string', default: '17' },
    'batch-size': { type: 'string', default: '8' },
    'seq-len': { type: 'string', default: '128' },
    'checkpoint-every': { type: 'string', default: '4' },
  },
});
for (const need of ['node', 'cli', 'data', 'work']) if (!o[need]) throw new Error(`kill-test: --${need} is required`);

const steps = Number(o.steps);
const report = await killAndResume({
  cli: [o.node, o.cli],
  train: ['train', '--model', o.model, '--size', o.size, '--steps', String(steps), '--data', o.data, '--seed', '11', '--device', o.device,
    '--deterministic', '--batch-size', o['batch-size'], '--seq-len', o['seq-len'], '--checkpoint-every', o['checkpoint-every'], '--keep', '2',
    '--eval-every', '10', '--eval-tokens', '4096', '--json'],
  steps,
  work: o.work,
  kills: Number(o.kills),
  seed: Number(o.seed),
});
const insideWrites = report.kills.filter((k) => k.insideWrite).length;
const ok = report.differences.length === 0 && report.unreadable.length === 0 && insideWrites >= 2;
console.log(JSON.stringify({ ok, model: `${o.model}/${o.size}`, device: o.device, deterministic: true, steps, inside_writes: insideWrites, ...report }));
process.exit(ok ? 0 : 1);
