// Prints presets' resolved model configs with a batch shape, as JSON lines {"name", "config",
// "batch_size", "seq_len"}, so that the PyTorch training benchmark
// (bench/reference/train_reference.py --configs) builds exactly the models `mambalab bench
// train` builds, from one source (kernel/src/models/presets.ts). Bundled by tests/gpu/pack.sh:
//   node .gpu-carry/cli/dist/preset-configs.mjs mamba/v1:64x1024 blackmamba/340m-1.5b:8x2048
import { resolveConfig } from '../../kernel/src/models/config.ts';
import { preset } from '../../kernel/src/models/presets.ts';

for (const spec of process.argv.slice(2)) {
  const match = /^([\w-]+)\/([\w.-]+):(\d+)x(\d+)$/.exec(spec);
  if (!match) throw new Error(`preset-configs: expected MODEL/SIZE:BATCHxLEN, got '${spec}'`);
  const [, model, size, batch, seqLen] = match;
  const config = resolveConfig(preset(model, size).config);
  console.log(JSON.stringify({ name: `train-${model}-${size}`, config, batch_size: Number(batch), seq_len: Number(seqLen) }));
}
