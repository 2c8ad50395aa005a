// How evenly the router spread tokens over the experts of each MoE layer. The kernel puts it
// into every document it writes (experts.balance); the lab extension draws what it receives.
// counts are the tokens each expert processed (within its capacity); dropped are the
// assignments over capacity, passed through the residual instead. So a layer's assignments are
// sum(counts) + dropped, shares say how the processed tokens spread over the experts and the
// dropped fraction is dropped / assignments.
import type { ExpertBalance, ExpertCounts } from './schema.js';

/** One MoE layer at one step; the fields are those of ExpertBalance. */
export interface LayerBalance {
  tokens: number;
  maxOverMean: number | null;
  cv: number | null;
  droppedFraction: number | null;
}

/** Each expert's share of the processed tokens; all 0 when none were processed. */
export function shares(counts: readonly number[]): number[] {
  const total = sum(counts);
  return counts.map((count) => (total > 0 ? count / total : 0));
}

/** The balance of one layer from its tokens per expert and, where known, its dropped assignments. */
export function layerBalance(counts: readonly number[], dropped?: number): LayerBalance {
  const processed = sum(counts);
  const tokens = processed + (dropped ?? 0);
  const droppedFraction = dropped !== undefined && tokens > 0 ? dropped / tokens : null;
  if (counts.length === 0 || !(processed > 0)) return { tokens, maxOverMean: null, cv: null, droppedFraction };
  const mean = processed / counts.length;
  const variance = counts.reduce((acc, count) => acc + (count - mean) ** 2, 0) / counts.length;
  return { tokens, maxOverMean: Math.max(...counts) / mean, cv: Math.sqrt(variance) / mean, droppedFraction };
}

/** Every layer's balance at every recorded step, as a document carries it. */
export function expertBalance(experts: ExpertCounts): ExpertBalance {
  const balance: ExpertBalance = { tokens: [], maxOverMean: [], cv: [], droppedFraction: [] };
  experts.counts.forEach((table, i) => {
    // A document read from JSON holds null where a value was not finite: no dropped count then.
    const layers = experts.layers.map((_, l) => layerBalance(table[l] ?? [], experts.dropped?.[i]?.[l] ?? undefined));
    balance.tokens.push(layers.map((b) => b.tokens));
    balance.maxOverMean.push(layers.map((b) => b.maxOverMean));
    balance.cv.push(layers.map((b) => b.cv));
    balance.droppedFraction.push(layers.map((b) => b.droppedFraction));
  });
  return balance;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
