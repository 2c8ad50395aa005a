// mamba_ssm's MambaLMHeadModel as save_pretrained writes it: config.json (MambaConfig: d_model,
// n_layer, vocab_size, ssm_cfg, rms_norm, pad_vocab_size_multiple, tie_embeddings, ...) and
// pytorch_model.bin, a state_dict with mambalab's own names (ours follow mamba_ssm's) plus
// lm_head.weight, the embedding's tied storage.
import { ConfigFields, copied, mixerTensors, sameValues, Tensors, type ImportPlan, type ImportedTensor } from './plan.js';
import type { TensorSource } from './source.js';

const FIELDS = ['d_model', 'd_intermediate', 'n_layer', 'vocab_size', 'ssm_cfg', 'attn_layer_idx', 'attn_cfg', 'rms_norm', 'residual_in_fp32', 'fused_add_norm', 'pad_vocab_size_multiple', 'tie_embeddings'];
// Mamba1's arguments: the first group shapes the weights, the second only initialises them.
const SSM_FIELDS = ['layer', 'd_state', 'd_conv', 'expand', 'dt_rank', 'bias', 'conv_bias', 'dt_min', 'dt_max', 'dt_init_floor', 'dt_init', 'dt_scale', 'use_fast_path'];

export function isMambaSsm(json: Record<string, unknown>): boolean {
  return 'd_model' in json && 'n_layer' in json;
}

export function planMambaSsm(c: ConfigFields, source: TensorSource): ImportPlan {
  const t = new Tensors(source);
  const unknown = Object.keys(c.json).find((k) => !FIELDS.includes(k));
  if (unknown) c.refuse(unknown, `is not a field of mamba_ssm's MambaConfig (${FIELDS.join(', ')})`);
  const d = c.int('d_model');
  const layers = c.int('n_layer');
  const vocab = c.int('vocab_size', 50277);
  const multiple = c.int('pad_vocab_size_multiple', 8);
  if (c.int('d_intermediate', 0, 0) !== 0) c.refuse('d_intermediate', 'adds a gated MLP with its own norm after every mixer, which this importer does not map');
  if (Array.isArray(c.json['attn_layer_idx']) && c.json['attn_layer_idx'].length > 0) c.refuse('attn_layer_idx', "puts mamba_ssm's attention layers in the model, which this importer does not map");
  if (!c.bool('rms_norm', true)) c.refuse('rms_norm', 'makes every norm a LayerNorm with a bias; mambalab pre-norms its layers with RMSNorm');
  if (!c.bool('tie_embeddings', true)) c.refuse('tie_embeddings', 'gives the LM head weights of its own; mambalab ties the head to the embedding');

  const ssmJson = c.json['ssm_cfg'] ?? {};
  if (typeof ssmJson !== 'object' || ssmJson === null || Array.isArray(ssmJson)) c.refuse('ssm_cfg', 'is not an object');
  const ssm = new ConfigFields(`${c.file} (ssm_cfg)`, ssmJson as Record<string, unknown>);
  const unknownSsm = Object.keys(ssm.json).find((k) => !SSM_FIELDS.includes(k));
  if (unknownSsm) ssm.refuse(unknownSsm, `is not an argument of mamba_ssm's Mamba (Mamba1) block`);
  if (ssm.string('layer', 'Mamba1') !== 'Mamba1') ssm.refuse('layer', 'is not the Mamba1 block mambalab implements');
  if (ssm.bool('bias', false)) ssm.refuse('bias', "puts biases on in_proj and out_proj, which mambalab's mixer does not have");
  const dState = ssm.int('d_state', 16);
  const dConv = ssm.int('d_conv', 4);
  const expand = ssm.int('expand', 2);
  const rank = ssm.json['dt_rank'] === 'auto' || !ssm.has('dt_rank') ? Math.ceil(d / 16) : ssm.int('dt_rank');

  const rows = Math.ceil(vocab / multiple) * multiple;
  const embedding = t.take('backbone.embedding.weight', [rows, d]);
  const tensors: ImportedTensor[] = [copied('backbone.embedding.weight', embedding)];
  for (let i = 0; i < layers; i++) {
    const prefix = `backbone.layers.${i}.`;
    tensors.push(copied(`${prefix}norm.weight`, t.take(`${prefix}norm.weight`, [d])));
    tensors.push(...mixerTensors(t, `${prefix}mixer.`, `${prefix}mixer.`, { dModel: d, dInner: expand * d, dtRank: rank, dState, dConv }, ssm.bool('conv_bias', true)));
  }
  tensors.push(copied('backbone.norm_f.weight', t.take('backbone.norm_f.weight', [d])));
  if (t.has('lm_head.weight') && !sameValues(t.take('lm_head.weight', [rows, d]), embedding)) {
    c.refuse('tie_embeddings', `is set, but lm_head.weight in ${t.file} differs from backbone.embedding.weight`);
  }
  t.checkAllTaken('a MambaLMHeadModel of this config has none of them');
  return {
    format: 'mamba-ssm',
    config: {
      model: 'mamba',
      vocabSize: vocab,
      padVocabMultiple: multiple,
      dModel: d,
      pattern: `M*${layers}`,
      dState,
      dConv,
      expand,
      dtRank: rank,
      dtMin: ssm.number('dt_min', 0.001),
      dtMax: ssm.number('dt_max', 0.1),
      dtInitFloor: ssm.number('dt_init_floor', 1e-4),
      normEps: 1e-5, // create_block's norm_epsilon: MambaLMHeadModel takes it from no config field
    },
    tensors,
    tokenizer: 'neox',
    source: t.file,
  };
}
