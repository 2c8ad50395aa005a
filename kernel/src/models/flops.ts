// Training FLOPs per token, for throughput (MFU) and for plotting loss against compute.
// Matrix products cost 2 FLOPs per multiply-add, three times over for forward, input gradient
// and weight gradient: 6 × the parameters a token uses, plus the tied LM head (6 · d · vocab).
// The selective scan adds about 7 FLOPs per channel and state forward, twice that backward.
// Attention adds its two products with the other tokens (QKᵀ and the weighted sum of V):
// 12 · len · nHeads · headDim per layer and token, as PaLM's MFU counts them (Chowdhery et
// al. 2022, appendix B): the whole len × len square, not halved for the causal mask, so MFU
// is comparable with the papers that report it this way.
import { headDim, paddedVocabSize, resolveConfig, type ModelConfig } from './config.js';
import { countParameters } from './params.js';
import { parsePattern, type LayerKind } from './pattern.js';

const SCAN_FLOPS_PER_STATE = 3 * 7;
const ATTENTION_FLOPS_PER_POSITION = 3 * 2 * 2; // passes × products (QKᵀ, PV) × FLOPs per multiply-add

/** FLOPs of one training step per token, for sequences of `seqLen` tokens (attention grows with it). */
export function trainingFlopsPerToken(partial: Partial<ModelConfig>, seqLen: number): number {
  const c = resolveConfig(partial);
  const { active } = countParameters(c);
  const head = 6 * c.dModel * paddedVocabSize(c);
  const kinds = parsePattern(c.pattern).flat();
  const count = (kind: LayerKind) => kinds.filter((k) => k === kind).length;
  const scan = count('M') * SCAN_FLOPS_PER_STATE * c.expand * c.dModel * c.dState;
  const attention = count('A') * ATTENTION_FLOPS_PER_POSITION * seqLen * c.nHeads * headDim(c);
  return 6 * active + head + scan + attention;
}
