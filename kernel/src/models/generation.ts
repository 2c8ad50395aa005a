// Text generation with a model: prompts (text or token ids, batched, padded with a mask) are
// checked here, run through the engine's prefill (the parallel forward) and then its recurrent
// decode steps, which sample on the engine's worker thread; tokens come back in chunks, so
// the event loop stays free, a caller can stream them (onToken) and stop between chunks (signal).
import { loadTokenizer, TOKENIZER_NAMES, type Tokenizer, type TokenizerName } from '../corpus/tokenizer.js';
import { MambalabError } from '../errors.js';
import type { NativeModel } from '../native.js';
import type { ModelConfig } from './config.js';

export interface GenerateOptions {
  /** New tokens per prompt, at most (default 32). */
  maxTokens?: number;
  /** 0 (the default) is greedy: the most likely token; above 0, sampling from softmax(logits / temperature). */
  temperature?: number;
  /** Sample from the k most likely tokens only (0, the default: all). */
  topK?: number;
  /** Sample from the fewest most likely tokens whose probability reaches topP (1, the default: all). */
  topP?: number;
  /** Drop tokens less likely than minP × the most likely one's probability (0, the default: none). */
  minP?: number;
  /** Logits of tokens already in the sequence are divided (positive) or multiplied (negative) by this (1: off). */
  repetitionPenalty?: number;
  /** The same seed, prompt and options give the same tokens (default 0). */
  seed?: number;
  /** A sequence ends when it generates one of these token ids or its text contains one of these strings. */
  stop?: string | number | readonly (string | number)[];
  /** For text prompts, text output and stop strings (default 'gpt2'). */
  tokenizer?: TokenizerName | Tokenizer;
  /** Token-id prompts of one length, padded left or right: 1 marks a prompt token, 0 padding. */
  mask?: readonly (readonly number[])[];
  /** Called after each chunk of tokens with every sequence so far. */
  onToken?: (progress: GenerateProgress) => void;
  /** Aborting it stops generation before the next chunk: generate() then rejects with GenerationInterrupted. */
  signal?: AbortSignal;
}

export type FinishReason = 'maxTokens' | 'stop' | 'interrupted';

export interface GenerateTiming {
  /** The prompts' prefill (the parallel forward) and the first token's sampling. */
  prefillMs: number;
  /** Mean wall time of one decode step (all sequences of the batch, sampling included). */
  msPerToken: number;
  /** Tokens generated per second over the decode steps, all sequences together. */
  tokensPerS: number;
  /** Each step's wall time: step 0 is the first token after prefill, the others one decode step each. */
  stepMs: number[];
  /** The last decode step replayed a captured CUDA graph (on CUDA from the second decode step on). */
  cudaGraph: boolean;
}

/** One prompt's generation. */
export interface Generation {
  /** The generated ids (not the prompt's), ending with the stop id or the token that completed a stop string. */
  tokens: number[];
  /** The generated text, up to (not including) a stop string or stop id. */
  text: string;
  finishReason: FinishReason;
  timing: GenerateTiming;
}

export interface GenerateProgress {
  generations: Generation[];
  /** Decode steps done, and the most that will run. */
  steps: number;
  maxTokens: number;
}

/** generate() stopped by its signal (a notebook's interrupt); `result` holds what was generated. */
export class GenerationInterrupted extends MambalabError {
  override name = 'GenerationInterrupted';
  declare readonly result: Generation[];

  constructor(message: string, result: Generation[]) {
    super(message);
    Object.defineProperty(this, 'result', { value: result, enumerable: false });
    this.stack = `${this.name}: ${message}`;
  }
}

export type Prompt = string | readonly number[];
export type Prompts = readonly string[] | readonly (readonly number[])[];

/** Tokens the engine samples between two returns to JS, at most, and the time they may take. */
const CHUNK_STEPS = 64;
const CHUNK_MS = 100;

interface Checked {
  rows: number[][];
  tokenizer: Tokenizer | undefined;
  sampling: { temperature: number; topK: number; topP: number; minP: number; repetitionPenalty: number; seed: number };
  maxTokens: number;
  stopIds: number[];
  stopStrings: string[];
}

/** Runs generation on a model's engine: one Generation per prompt. */
export async function runGeneration(engine: NativeModel, config: Pick<ModelConfig, 'vocabSize' | 'maxPositions'>, prompt: Prompt | Prompts, options: GenerateOptions): Promise<Generation[]> {
  const c = checkRequest(prompt, options, config.vocabSize);
  const longest = Math.max(...c.rows.map((r) => r.length));
  if (config.maxPositions > 0 && longest + c.maxTokens - 1 > config.maxPositions) {
    throw new MambalabError(`generate: a prompt of ${longest} tokens plus maxTokens ${c.maxTokens} is more than the ${config.maxPositions} positions the model has learned (config.maxPositions)`);
  }
  const batch = c.rows.length;
  const lengths = Int32Array.from(c.rows, (r) => r.length);
  const started = performance.now();
  await engine.generateStart(Int32Array.from(c.rows.flat()), lengths, c.maxTokens, c.sampling, Int32Array.from(c.stopIds));
  const prefillMs = performance.now() - started;

  const rows = c.rows.map(() => ({ tokens: [] as number[], done: false, reason: 'maxTokens' as FinishReason, textEnd: -1 }));
  const stepMs: number[] = [];
  let cudaGraph = false;
  const text = (tokens: readonly number[]) => (c.tokenizer ? c.tokenizer.decode(tokens) : '');
  const timing = (): GenerateTiming => {
    const decode = stepMs.slice(1);
    const ms = decode.length > 0 ? decode.reduce((a, b) => a + b, 0) / decode.length : (stepMs[0] ?? 0);
    return { prefillMs: prefillMs + (stepMs[0] ?? 0), msPerToken: ms, tokensPerS: ms > 0 ? (1000 * batch) / ms : 0, stepMs: [...stepMs], cudaGraph };
  };
  const generations = (): Generation[] => {
    const t = timing();
    return rows.map((r) => {
      const full = text(r.tokens);
      return { tokens: [...r.tokens], text: r.textEnd >= 0 ? full.slice(0, r.textEnd) : full, finishReason: r.reason, timing: t };
    });
  };

  while (stepMs.length < c.maxTokens && rows.some((r) => !r.done)) {
    if (options.signal?.aborted) {
      for (const r of rows) if (!r.done) r.reason = 'interrupted';
      const result = generations();
      throw new GenerationInterrupted(`generate: interrupted after ${stepMs.length} of ${c.maxTokens} tokens`, result);
    }
    const chunk = await engine.generateNext(Math.min(CHUNK_STEPS, c.maxTokens - stepMs.length), CHUNK_MS);
    cudaGraph = chunk.cudaGraph;
    chunk.stepMs.forEach((ms, step) => {
      stepMs.push(ms);
      rows.forEach((r, i) => {
        if (r.done) return;
        const id = chunk.tokens[step * batch + i]!;
        r.tokens.push(id);
        if (c.stopIds.includes(id)) {
          r.done = true;
          r.reason = 'stop';
          r.textEnd = text(r.tokens.slice(0, -1)).length;
          return;
        }
        if (c.stopStrings.length > 0) {
          const soFar = text(r.tokens);
          const at = Math.min(...c.stopStrings.map((s) => soFar.indexOf(s)).filter((k) => k >= 0));
          if (Number.isFinite(at)) {
            r.done = true;
            r.reason = 'stop';
            r.textEnd = at;
          }
        }
      });
    });
    options.onToken?.({ generations: generations(), steps: stepMs.length, maxTokens: c.maxTokens });
  }
  return generations();
}

const SAMPLING_DEFAULTS = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 };

function checkRequest(prompt: Prompt | Prompts, o: GenerateOptions, vocabSize: number): Checked {
  if (o === null || typeof o !== 'object') throw new MambalabError(`generate: options must be an object, got ${JSON.stringify(o)}`);
  const known = ['maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'tokenizer', 'mask', 'onToken', 'signal'];
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw new MambalabError(`generate: unknown option '${key}' (options: ${known.join(', ')})`);
  }
  const number = (name: keyof typeof SAMPLING_DEFAULTS | 'maxTokens', ok: (v: number) => boolean, what: string, fallback: number): number => {
    const v = o[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new MambalabError(`generate: ${name} must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const sampling = {
    temperature: number('temperature', (v) => v >= 0, 'a number ≥ 0 (0: greedy)', SAMPLING_DEFAULTS.temperature),
    topK: number('topK', (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0 (0: off)', SAMPLING_DEFAULTS.topK),
    topP: number('topP', (v) => v > 0 && v <= 1, 'in (0, 1] (1: off)', SAMPLING_DEFAULTS.topP),
    minP: number('minP', (v) => v >= 0 && v <= 1, 'in [0, 1] (0: off)', SAMPLING_DEFAULTS.minP),
    repetitionPenalty: number('repetitionPenalty', (v) => v > 0, 'a number > 0 (1: off)', SAMPLING_DEFAULTS.repetitionPenalty),
    seed: number('seed', (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer', SAMPLING_DEFAULTS.seed),
  };
  const maxTokens = number('maxTokens', (v) => Number.isInteger(v) && v >= 1 && v <= 1 << 20, 'an integer from 1 to 1048576', 32);
  const tokenizer = resolveTokenizer(o.tokenizer, prompt);
  if (tokenizer && tokenizer.vocabSize > vocabSize) {
    throw new MambalabError(`generate: tokenizer '${tokenizer.name}' has ${tokenizer.vocabSize} ids, more than the model's vocabSize ${vocabSize}`);
  }

  const stops = o.stop === undefined ? [] : Array.isArray(o.stop) ? (o.stop as unknown[]) : [o.stop];
  const stopIds: number[] = [];
  const stopStrings: string[] = [];
  for (const s of stops) {
    if (typeof s === 'string' && s.length > 0) {
      if (!tokenizer) throw new MambalabError(`generate: stop string ${JSON.stringify(s)} needs a tokenizer to read the text (options.tokenizer)`);
      stopStrings.push(s);
    } else if (typeof s === 'number' && Number.isInteger(s) && s >= 0 && s < vocabSize) {
      stopIds.push(s);
    } else {
      throw new MambalabError(`generate: stop must hold non-empty strings or token ids in [0, ${vocabSize}), got ${JSON.stringify(s)}`);
    }
  }
  return { rows: promptRows(prompt, o.mask, tokenizer, vocabSize), tokenizer, sampling, maxTokens, stopIds, stopStrings };
}

function resolveTokenizer(option: GenerateOptions['tokenizer'], prompt: Prompt | Prompts): Tokenizer | undefined {
  if (option === undefined) {
    // Text needs one; token ids get GPT-2's for their text when the model's vocabulary allows it.
    const text = typeof prompt === 'string' || (Array.isArray(prompt) && typeof prompt[0] === 'string');
    return text ? loadTokenizer('gpt2') : undefined;
  }
  if (typeof option === 'string') {
    if (!(TOKENIZER_NAMES as readonly string[]).includes(option)) {
      throw new MambalabError(`generate: tokenizer must be one of ${TOKENIZER_NAMES.join(', ')} or a Tokenizer, got ${JSON.stringify(option)}`);
    }
    return loadTokenizer(option);
  }
  if (typeof option !== 'object' || option === null || typeof option.encode !== 'function' || typeof option.decode !== 'function') {
    throw new MambalabError('generate: tokenizer must be a tokenizer name or a Tokenizer (see loadTokenizer)');
  }
  return option;
}

/** The prompts as rows of real tokens: text encoded, padding removed by the mask. */
function promptRows(prompt: Prompt | Prompts, mask: GenerateOptions['mask'], tokenizer: Tokenizer | undefined, vocabSize: number): number[][] {
  const single = typeof prompt === 'string' || (Array.isArray(prompt) && (prompt.length === 0 || typeof prompt[0] === 'number'));
  const list: unknown[] = single ? [prompt] : Array.isArray(prompt) ? [...(prompt as unknown[])] : [prompt];
  if (list.length === 0) throw new MambalabError('generate: expected a prompt (text or token ids) or a list of them, got an empty list');
  const rows = list.map((p, r) => {
    const where = single ? 'prompt' : `prompt ${r}`;
    if (typeof p === 'string') return Array.from(tokenizer!.encode(p));
    if (!Array.isArray(p)) throw new MambalabError(`generate: ${where} must be text or an array of token ids, got ${JSON.stringify(p)}`);
    p.forEach((id, c) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new MambalabError(`generate: ${where}, position ${c}: ${JSON.stringify(id)} is not a token id in [0, ${vocabSize})`);
      }
    });
    return [...(p as number[])];
  });
  if (mask !== undefined) applyMask(rows, mask, single);
  rows.forEach((row, r) => {
    if (row.length === 0) throw new MambalabError(`generate: ${single ? 'the prompt' : `prompt ${r}`} has no tokens (a model needs at least one to continue)`);
  });
  return rows;
}

// Keeps each row's masked-in tokens, which must be one run (padding on the left or the right).
function applyMask(rows: number[][], mask: readonly (readonly number[])[], single: boolean): void {
  const masks = single && mask.length > 0 && typeof mask[0] === 'number' ? [mask as unknown as number[]] : mask;
  if (!Array.isArray(masks) || masks.length !== rows.length) {
    throw new MambalabError(`generate: mask must have one row per prompt (${rows.length}), got ${JSON.stringify(mask)?.slice(0, 80)}`);
  }
  rows.forEach((row, r) => {
    const m = masks[r];
    if (!Array.isArray(m) || m.length !== row.length || m.some((v) => v !== 0 && v !== 1)) {
      throw new MambalabError(`generate: mask row ${r} must be ${row.length} values of 0 or 1, like its prompt`);
    }
    const first = m.indexOf(1);
    const last = m.lastIndexOf(1);
    if (first >= 0 && m.slice(first, last + 1).includes(0)) {
      throw new MambalabError(`generate: mask row ${r} has padding between prompt tokens; pad on the left or the right only`);
    }
    rows[r] = first < 0 ? [] : row.slice(first, last + 1);
  });
}
