// `mambalab generate`: continues a prompt with a saved model (or a run's newest checkpoint),
// streaming the text to stdout, or printing one JSON object with --json.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { TOKENIZER_NAMES } from '../corpus/tokenizer.js';
import { MambalabError } from '../errors.js';
import { DEVICES, PRECISIONS } from '../models/config.js';
import type { GenerateOptions } from '../models/generation.js';
import { loadModel, WEIGHTS_FILE } from '../models/model.js';
import { newestCheckpoint } from '../train/checkpoints.js';
import { choiceFlag, intFlag, numberFlag, parseFlags } from './args.js';

export const usage = `mambalab generate --model <dir> --prompt "..." [options]
  --model DIR               a saved model (config.json + model.safetensors), a checkpoint, or a run directory (its newest checkpoint)
  --prompt TEXT             the text to continue
  --max-tokens N            new tokens at most (default 32)
  --temperature T           0 (the default) is greedy; above 0 samples from softmax(logits / T)
  --top-k K, --top-p P, --min-p P, --repetition-penalty R   sampling filters (see README, Generation)
  --seed S                  the same seed gives the same text (default 0)
  --stop S                  stop at this text (repeat the flag for several)
  --tokenizer NAME          gpt2 | neox (default gpt2)
  --device DEV              cpu | cuda | auto (default: as saved); --precision bf16 | fp32 on the GPU
  --json                    one JSON object: tokens, text, ms_per_token, prefill_ms, tokens_per_s, finish_reason, device`;

function modelDir(dir: string): string {
  const newest = newestCheckpoint(dir);
  if (newest) return newest.dir;
  if (!existsSync(join(dir, WEIGHTS_FILE))) {
    throw new MambalabError(`generate: ${dir} holds no model (no ${WEIGHTS_FILE}) and no checkpoint (no checkpoints/step-*)`);
  }
  return dir;
}

export async function generateCommand(argv: string[]): Promise<void> {
  const { values: f } = parseFlags('generate', argv, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    tokenizer: { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (!f.model) throw new MambalabError('generate: --model is required (a saved model, a checkpoint or a run directory)');
  if (f.prompt === undefined) throw new MambalabError('generate: --prompt is required (the text to continue)');
  const overrides = {
    ...(f.device ? { device: choiceFlag('device', f.device, DEVICES, 'cpu') } : {}),
    ...(f.precision ? { precision: choiceFlag('precision', f.precision, PRECISIONS, 'bf16') } : {}),
  };
  const model = loadModel(modelDir(f.model), overrides);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  let shown = 0;
  const options: GenerateOptions = {
    maxTokens: intFlag('max-tokens', f['max-tokens'], 32, 1),
    temperature: numberFlag('temperature', f.temperature, 0),
    topK: intFlag('top-k', f['top-k'], 0),
    topP: numberFlag('top-p', f['top-p'], 1),
    minP: numberFlag('min-p', f['min-p'], 0),
    repetitionPenalty: numberFlag('repetition-penalty', f['repetition-penalty'], 1),
    seed: intFlag('seed', f.seed, 0),
    tokenizer: choiceFlag('tokenizer', f.tokenizer, TOKENIZER_NAMES, 'gpt2'),
    ...(f.stop ? { stop: f.stop } : {}),
    signal: controller.signal,
    // Streams what is new of the text; a stop string may still cut it, so a few characters wait.
    ...(f.json
      ? {}
      : {
          onToken: ({ generations }) => {
            const text = generations[0]!.text;
            const hold = Math.max(0, ...(f.stop ?? []).map((s) => s.length - 1));
            const upTo = Math.max(shown, text.length - hold);
            process.stdout.write(text.slice(shown, upTo));
            shown = upTo;
          },
        }),
  };
  try {
    const g = await model.generate(f.prompt, options);
    if (f.json) {
      const out = {
        tokens: g.tokens,
        text: g.text,
        ms_per_token: g.timing.msPerToken,
        prefill_ms: g.timing.prefillMs,
        tokens_per_s: g.timing.tokensPerS,
        finish_reason: g.finishReason,
        device: model.device,
      };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      process.stdout.write(g.text.slice(shown) + '\n');
      process.stderr.write(`${g.tokens.length} tokens, ${g.timing.msPerToken.toFixed(2)} ms/token (${g.finishReason}) on ${model.deviceNote}\n`);
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}
