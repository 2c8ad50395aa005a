// `mambalab import`: a published checkpoint from local files into a model loadModel reads.
import { MambalabError } from '../errors.js';
import { importCheckpoint } from '../models/import/import.js';
import { parseFlags } from './args.js';

export const usage = `mambalab import --from <dir> --out <dir> [--json]
  --from DIR   a checkpoint on disk (nothing is downloaded):
               transformers' MambaForCausalLM (config.json + model.safetensors, or shards),
               mamba_ssm's MambaLMHeadModel (config.json with d_model, n_layer + pytorch_model.bin),
               Zyphra's BlackMamba (config.json with mamba_moe_layers + pytorch_model.bin)
  --out DIR    a new (or empty) directory: config.json, model.safetensors, import.json;
               written whole or not at all, and never over an existing model
  --json       one JSON object on stdout: format, out, parameters, tokenizer, config`;

export async function importCommand(argv: string[]): Promise<void> {
  const { values: f, positionals } = parseFlags('import', argv, {
    from: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length > 0) throw new MambalabError(`import: unexpected argument '${positionals[0]}' (see mambalab import --help)`);
  if (!f.from) throw new MambalabError('import: --from is required (the directory of a published checkpoint)');
  if (!f.out) throw new MambalabError('import: --out is required (a new directory for the imported model)');
  const result = importCheckpoint(f.from, f.out);
  if (f.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(`imported ${result.format} (${result.parameters} parameters, pattern ${result.config.pattern}) into ${result.out}; tokenizer: ${result.tokenizer}\n`);
  }
}
