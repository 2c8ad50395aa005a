// Routing of every MoE layer at one recorded step, as the balance table and the charts show it:
// the counts the kernel sent, each expert's share of them, and the balance the kernel computed
// (experts.balance). Documents from kernels that did not send the balance yet get it from the
// contract's expertBalance, the function the kernel runs, so old notebooks show the same table.
import { expertBalance, shares, type ExpertCounts } from '@mambalab/contract';

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

/** Every MoE layer's routing at recorded step index `i`. */
export function routingAt(experts: ExpertCounts, i: number): LayerRouting[] {
  const balance = experts.balance ?? expertBalance(experts);
  const table = experts.counts[i] ?? [];
  return experts.layers.map((layer, l) => {
    const counts = table[l] ?? [];
    return {
      layer,
      tokens: balance.tokens[i]?.[l] ?? Number.NaN,
      counts: [...counts],
      shares: shares(counts),
      maxOverMean: balance.maxOverMean[i]?.[l] ?? null,
      cv: balance.cv[i]?.[l] ?? null,
      dropped: experts.dropped?.[i]?.[l] ?? null,
      droppedFraction: balance.droppedFraction[i]?.[l] ?? null,
    };
  });
}
