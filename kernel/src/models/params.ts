// Parameter counts from a config alone, so paper-sized models can be sized without
// allocating them (tests check these formulas against the engine's real tensors).
import { headDim, paddedVocabSize, resolveConfig, type ModelConfig } from './config.js';
import { parsePattern, type LayerKind } from './pattern.js';

export interface ParameterCount {
  total: number;
  /**
   * The token embedding (tied with the LM head) and the learned positions, if any; the papers
   * leave both out of model sizes.
   */
  embedding: number;
  nonEmbedding: number;
  /** Non-embedding parameters one token uses: topK of numExperts experts. */
  active: number;
}

function layerParameters(kind: LayerKind, c: ModelConfig): { total: number; active: number } {
  const d = c.dModel;
  switch (kind) {
    case 'M': {
      const di = c.expand * d;
      const rank = c.dtRank === 'auto' ? Math.ceil(d / 16) : c.dtRank;
      const n = 2 * di * d + di * c.dConv + di + (rank + 2 * c.dState) * di + di * rank + di + di * c.dState + di + d * di;
      return { total: n, active: n };
    }
    case 'F': {
      const n = (c.mlpKind === 'gelu' ? 2 : 3) * d * c.dFF;
      return { total: n, active: n };
    }
    case 'E': {
      const expert = (c.expertKind === 'gelu' ? 2 : 3) * d * c.expertHidden;
      const router = c.numExperts * d + (c.routerBias ? c.numExperts : 0);
      return { total: router + c.numExperts * expert, active: router + c.topK * expert };
    }
    case 'A': {
      // in_proj: [q; k; v] rows for nHeads query and nKvHeads key/value heads; out_proj back to dModel. No biases.
      const n = (c.nHeads + 2 * c.nKvHeads) * headDim(c) * d + d * c.nHeads * headDim(c);
      return { total: n, active: n };
    }
  }
}

export function countParameters(partial: Partial<ModelConfig>): ParameterCount {
  const c = resolveConfig(partial);
  const embedding = (paddedVocabSize(c) + c.maxPositions) * c.dModel;
  const normF = c.finalNorm === 'layernorm' ? 2 * c.dModel : c.dModel; // weight (and bias)
  let total = normF;
  let active = normF;
  for (const layer of parsePattern(c.pattern)) {
    total += c.dModel; // the layer's norm
    active += c.dModel;
    for (const kind of layer) {
      const n = layerParameters(kind, c);
      total += n.total;
      active += n.active;
    }
  }
  return { total: total + embedding, embedding, nonEmbedding: total, active };
}
