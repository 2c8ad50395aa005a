// Training FLOPs per token, for throughput (MFU) and for plotting loss against compute.
// Matrix products cost 2 FLOPs per multiply-add, three times over for forward, input gradient
// and weight gradient: 6 × the parameters a token uses, plus the tied LM head (6 · d · vocab).
// The selective scan adds about 7 FLOPs per channel and state forward, twice that backward.
import { paddedVocabSize, resolveConfig, type ModelConfig } from './config.js';
import { countParameters } from './params.js';
import { parsePattern } from './pattern.js';

const SCAN_FLOPS_PER_STATE = 3 * 7;

export function trainingFlopsPerToken(partial: Partial<ModelConfig>): number {
  const c = resolveConfig(partial);
  const { active } = countParameters(c);
  const head = 6 * c.dModel * paddedVocabSize(c);
  const mambaLayers = parsePattern(c.pattern).flat().filter((k) => k === 'M').length;
  const scan = mambaLayers * SCAN_FLOPS_PER_STATE * c.expand * c.dModel * c.dState;
  return 6 * active + head + scan;
}
