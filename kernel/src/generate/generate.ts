// generate(model, prompt, options): model.generate for notebooks. Where a watcher is set (the
// Jupyter kernel's, display/generate-watcher.ts), the tokens stream into one output that
// updates in place, and the kernel's interrupt stops generation between chunks (the cell
// then ends with GenerationInterrupted, as an interrupted fit ends with TrainingInterrupted).
import { runGeneration, type GenerateOptions, type GenerateProgress, type Generation, type Prompt, type Prompts } from '../models/generation.js';
import type { Model } from '../models/model.js';

/** One generate() as a watcher sees it. */
export interface GenerateWatch {
  /** Aborted when the generation must stop. */
  signal?: AbortSignal;
  update(progress: GenerateProgress): void;
  end(outcome: { result: Generation[] } | { error: unknown }): void;
}

export interface GenerateWatcher {
  /** Called as a generate() starts; undefined: not watched (outside a notebook cell). */
  start(model: Model, options: { maxTokens: number }): GenerateWatch | undefined;
}

let watcher: GenerateWatcher | undefined;

/** @internal the Jupyter kernel sets its watcher (display/kernel-hooks.ts); undefined unsets it. */
export function setGenerateWatcher(w: GenerateWatcher | undefined): void {
  watcher = w;
}

/** Continues a prompt, or each of a list of prompts, as model.generate does, streaming into the notebook. */
export function generate(model: Model, prompt: Prompt, options?: GenerateOptions): Promise<Generation>;
export function generate(model: Model, prompts: Prompts, options?: GenerateOptions): Promise<Generation[]>;
export async function generate(model: Model, prompt: Prompt | Prompts, options: GenerateOptions = {}): Promise<Generation | Generation[]> {
  const watch = watcher?.start(model, { maxTokens: typeof options.maxTokens === 'number' ? options.maxTokens : 32 });
  if (!watch) return model.generate(prompt as Prompt, options);
  const signals = [options.signal, watch.signal].filter((s): s is AbortSignal => s !== undefined);
  try {
    const result = await runGeneration(model.engine, model.config, prompt, {
      ...options,
      ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
      onToken: (progress) => {
        watch.update(progress);
        options.onToken?.(progress);
      },
    });
    watch.end({ result });
    const single = typeof prompt === 'string' || (Array.isArray(prompt) && typeof prompt[0] !== 'string' && !Array.isArray(prompt[0]));
    return single ? result[0]! : result;
  } catch (error) {
    watch.end({ error });
    throw error;
  }
}
