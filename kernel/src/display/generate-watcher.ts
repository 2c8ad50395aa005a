// Draws each generate() of a notebook cell into one output that updates in place: the text
// of every sequence so far and a progress line (tokens, tokens/s); stops them on interrupt.
import { formatCount } from '@mambalab/contract';

import type { GenerateWatch, GenerateWatcher } from '../generate/generate.js';
import { GenerationInterrupted, type Generation, type GenerateProgress } from '../models/generation.js';
import type { TextBundle } from './bundle.js';
import { escapeHtml } from './html.js';
import { LiveOutput } from './live.js';
import { sendBundle, type CellWriter } from './tslab.js';

export interface GenerateWatcherOptions {
  /** The writer of the cell running now; generations outside a cell are not drawn. */
  writer: () => CellWriter | undefined;
  minIntervalMs?: number;
}

export class LiveGenerateWatcher implements GenerateWatcher {
  private readonly running = new Set<AbortController>();

  constructor(private readonly options: GenerateWatcherOptions) {}

  /** Stops every running generation before its next chunk; false when none was running. */
  interrupt(): boolean {
    const live = [...this.running].filter((c) => !c.signal.aborted);
    for (const c of live) c.abort();
    return live.length > 0;
  }

  start(_model: unknown, { maxTokens }: { maxTokens: number }): GenerateWatch | undefined {
    const writer = this.options.writer();
    if (!writer) return undefined;
    const controller = new AbortController();
    this.running.add(controller);
    let state: { generations: Generation[]; steps: number; status: string } = { generations: [], steps: 0, status: 'generating' };
    let output: LiveOutput<TextBundle> | undefined;
    output = new LiveOutput<TextBundle>(
      (bundle, update) => sendBundle(writer, bundle, { displayId: output!.displayId, update }),
      () => generationBundle(state.generations, state.steps, maxTokens, state.status),
      this.options.minIntervalMs ?? 250,
    );
    output.changed();
    return {
      signal: controller.signal,
      update: (progress: GenerateProgress) => {
        state = { generations: progress.generations, steps: progress.steps, status: 'generating' };
        output.changed();
      },
      end: (outcome) => {
        this.running.delete(controller);
        const interrupted = 'error' in outcome && outcome.error instanceof GenerationInterrupted ? outcome.error : undefined;
        const generations = 'result' in outcome ? outcome.result : (interrupted?.result ?? state.generations);
        const steps = generations[0]?.timing.stepMs.length ?? state.steps;
        state = { generations, steps, status: 'result' in outcome ? 'done' : interrupted ? 'interrupted' : 'failed' };
        output.flush();
      },
    };
  }
}

/** The text of every sequence and one progress line, as plain text and HTML. */
export function generationBundle(generations: readonly Generation[], steps: number, maxTokens: number, status: string): TextBundle {
  const timing = generations[0]?.timing;
  const rate = timing && timing.tokensPerS > 0 ? ` · ${formatCount(timing.tokensPerS)} tokens/s · ${timing.msPerToken.toFixed(2)} ms/token` : '';
  const line = `${status}: ${steps}/${maxTokens} tokens${rate}`;
  const texts = generations.map((g) => g.text);
  return {
    'text/plain': [...texts, line].join('\n'),
    'text/html': [
      '<div class="mambalab-generate">',
      ...texts.map((t) => `<pre style="white-space: pre-wrap">${escapeHtml(t)}</pre>`),
      `<p><code>${escapeHtml(line)}</code></p>`,
      '</div>',
    ].join(''),
  };
}
