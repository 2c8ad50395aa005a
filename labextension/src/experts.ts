// Routing statistics of one MoE layer at one recorded step, from the token counts the kernel
// sends. counts are the tokens each expert processed (within its capacity); dropped are the
// assignments over capacity, passed through the residual instead. So a layer's assignments
// are sum(counts) + dropped, shares say how the processed tokens spread over the experts and
// the dropped fraction is dropped / assignments.
import type { ExpertCounts } from '@mambalab/contract';

export interface LayerRouting {
  /** the model's layer index (experts.layers[l]) */
  layer: number;
  /** assignments in this layer at this step: processed (sum over experts) plus dropped */
  tokens: number;
  /** tokens each expert processed */
  counts: number[];
  /** each expert's share of the processed tokens; all 0 when none were processed */
  shares: number[];
  /** busiest expert's count over the mean count: 1 is perfectly balanced, E is one expert taking all */
  maxOverMean: number | null;
  /** coefficient of variation of the counts (population std / mean): 0 is perfectly balanced */
  cv: number | null;
  dropped: number | null;
  droppedFraction: number | null;
}

export function shares(counts: readonly number[]): number[] {
  const total = sum(counts);
  return counts.map((count) => (total > 0 ? count / total : 0));
}

export function balance(counts: readonly number[]): { maxOverMean: number; cv: number } | null {
  const total = sum(counts);
  if (counts.length === 0 || !(total > 0)) return null;
  const mean = total / counts.length;
  const variance = counts.reduce((acc, count) => acc + (count - mean) ** 2, 0) / counts.length;
  return { maxOverMean: Math.max(...counts) / mean, cv: Math.sqrt(variance) / mean };
}

/** Every MoE layer's routing at recorded step index `i`. */
export function routingAt(experts: ExpertCounts, i: number): LayerRouting[] {
  const table = experts.counts[i] ?? [];
  return experts.layers.map((layer, l) => {
    const counts = table[l] ?? [];
    const metrics = balance(counts);
    const dropped = experts.dropped?.[i]?.[l] ?? null;
    const tokens = sum(counts) + (dropped ?? 0);
    return {
      layer,
      tokens,
      counts: [...counts],
      shares: shares(counts),
      maxOverMean: metrics?.maxOverMean ?? null,
      cv: metrics?.cv ?? null,
      dropped,
      droppedFraction: dropped !== null && tokens > 0 ? dropped / tokens : null,
    };
  });
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
