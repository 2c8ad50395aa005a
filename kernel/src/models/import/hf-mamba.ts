// Hugging Face transformers' MambaForCausalLM: config.json (MambaConfig's fields, its defaults
// where absent) and model.safetensors (or shards) with the names backbone.embeddings.weight,
// backbone.layers.N.{norm,mixer.*}, backbone.norm_f.weight and, when saved, the tied lm_head.
import { ConfigFields, copied, mixerTensors, padMultipleFor, sameValues, Tensors, type ImportPlan, type ImportedTensor } from './plan.js';
import type { TensorSource } from './source.js';

export function isHfMamba(json: Record<string, unknown>): boolean {
  const architectures = json['architectures'];
  return (Array.isArray(architectures) && architectures.includes('MambaForCausalLM')) || json['model_type'] === 'mamba';
}

export function planHfMamba(c: ConfigFields, source: TensorSource): ImportPlan {
  const t = new Tensors(source);
  const d = c.int('hidden_size', 768);
  const layers = c.int('num_hidden_layers', 32);
  const vocab = c.int('vocab_size', 50280);
  const dState = c.int('state_size', 16);
  const expand = c.int('expand', 2);
  const dConv = c.int('conv_kernel', 4);
  const dInner = expand * d;
  // transformers' defaults, not ours: a config without use_bias has biases on in_proj and out_proj.
  if (c.bool('use_bias', true)) c.refuse('use_bias', 'puts biases on in_proj and out_proj, which mambalab\'s mixer does not have');
  const convBias = c.bool('use_conv_bias', true);
  if (c.string('hidden_act', 'silu') !== 'silu') c.refuse('hidden_act', 'is not the SiLU of the Mamba block');
  if (!c.bool('tie_word_embeddings', true)) c.refuse('tie_word_embeddings', 'gives the LM head weights of its own; mambalab ties the head to the embedding');
  if (c.int('intermediate_size', dInner) !== dInner) c.refuse('intermediate_size', `differs from expand × hidden_size (${dInner})`);
  const rank = c.json['time_step_rank'] === 'auto' || !c.has('time_step_rank') ? Math.ceil(d / 16) : c.int('time_step_rank');

  const embeddingName = t.has('backbone.embeddings.weight') ? 'backbone.embeddings.weight' : 'backbone.embedding.weight';
  const embedding = t.take(embeddingName, [vocab, d]);
  const tensors: ImportedTensor[] = [copied('backbone.embedding.weight', embedding)];
  for (let i = 0; i < layers; i++) {
    const from = `backbone.layers.${i}.`;
    const to = `backbone.layers.${i}.`;
    tensors.push(copied(`${to}norm.weight`, t.take(`${from}norm.weight`, [d])));
    tensors.push(...mixerTensors(t, `${from}mixer.`, `${to}mixer.`, { dModel: d, dInner, dtRank: rank, dState, dConv }, convBias));
  }
  tensors.push(copied('backbone.norm_f.weight', t.take('backbone.norm_f.weight', [d])));
  if (t.has('lm_head.weight')) {
    if (!sameValues(t.take('lm_head.weight', [vocab, d]), embedding)) {
      c.refuse('tie_word_embeddings', `is set, but lm_head.weight in ${t.file} differs from ${embeddingName}`);
    }
  }
  t.checkAllTaken('a MambaForCausalLM of this config has none of them');
  return {
    format: 'hf-mamba',
    config: {
      model: 'mamba',
      vocabSize: vocab,
      padVocabMultiple: padMultipleFor(vocab, embedding.shape[0]!, t.file, embeddingName),
      dModel: d,
      pattern: `M*${layers}`,
      dState,
      dConv,
      expand,
      dtRank: rank,
      dtMin: c.number('time_step_min', 0.001),
      dtMax: c.number('time_step_max', 0.1),
      dtInitFloor: c.number('time_step_floor', 1e-4),
      normEps: c.number('layer_norm_epsilon', 1e-5),
    },
    tensors,
    tokenizer: 'neox',
    source: t.file,
  };
}
