// One output that redraws in place, at most every minIntervalMs: a step that lands sooner
// is drawn when the interval is up (or at flush), so the last state always shows.
import { randomBytes } from 'node:crypto';

import type { MimeBundle } from './bundle.js';

export type BundleSink<Bundle = MimeBundle> = (bundle: Bundle, update: boolean) => void;

/** Draws `render()`'s bundle (fit's display document, generate's text) through `sink`. */
export class LiveOutput<Bundle = MimeBundle> {
  readonly displayId = randomBytes(8).toString('hex');
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly sink: BundleSink<Bundle>,
    private readonly render: () => Bundle,
    readonly minIntervalMs = 250,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Something changed: draw now if the interval allows, else once it does. */
  changed(): void {
    if (this.timer) return;
    const wait = this.lastDrawMs + this.minIntervalMs - this.now();
    if (wait <= 0) {
      this.draw();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, wait);
    this.timer.unref?.();
  }

  /** Draws the current state now, cancelling a pending draw. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private draw(): void {
    this.lastDrawMs = this.now();
    const update = this.drawn;
    this.drawn = true;
    this.sink(this.render(), update);
  }
}

/**
 * Columns thinned to at most maxPoints rows for live redraws of long runs: each bucket of
 * rows becomes one, at the bucket's last step with the mean of its values.
 */
export function thinColumns<T extends { step: number[] }>(columns: T, maxPoints: number, positions: readonly string[]): T {
  const n = columns.step.length;
  if (n <= maxPoints) return columns;
  const size = Math.ceil(n / maxPoints);
  const out: Record<string, number[]> = {};
  for (const [key, values] of Object.entries(columns) as [string, number[] | undefined][]) {
    if (!values) continue;
    const thinned: number[] = [];
    for (let i = 0; i < n; i += size) {
      const end = Math.min(n, i + size);
      if (positions.includes(key)) {
        thinned.push(values[end - 1]!);
      } else {
        let sum = 0;
        for (let j = i; j < end; j++) sum += values[j]!;
        thinned.push(sum / (end - i));
      }
    }
    out[key] = thinned;
  }
  return out as T;
}
