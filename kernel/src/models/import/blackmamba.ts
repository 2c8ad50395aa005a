// Zyphra's BlackMamba as released: config.json (num_layers, hidden_size, state_size,
// conv_dimension, vocab_size, expansion_factor, mamba_moe_layers, ffn_hidden_size,
// add_bias_linear, swiglu) and pytorch_model.bin holding {"model": state_dict} with Megatron's
// names. The conventions are those of the released code (MambaModel.from_pretrained and the
// modules it builds), which README "Importing published weights" lists.
import { MambalabError } from '../../errors.js';
import { ConfigFields, copied, mixerTensors, padMultipleFor, patternOf, sameValues, Tensors, type ImportPlan, type ImportedTensor } from './plan.js';
import type { SourceTensor, TensorSource } from './source.js';

export const BLACKMAMBA_STATE_KEY = 'model';

export function isBlackMamba(json: Record<string, unknown>): boolean {
  return 'mamba_moe_layers' in json;
}

type Kind = { kind: 'M' } | { kind: 'F' } | { kind: 'E'; experts: number };

/** create_block's reading of one mamba_moe_layers entry: 'r' Mamba, '1…' a dense MLP, else a switch MLP of int(last character) experts. */
function layerKind(c: ConfigFields, entry: unknown, index: number): Kind {
  const field = `mamba_moe_layers[${index}]`;
  if (typeof entry !== 'string' || entry.length === 0) throw new MambalabError(`import: ${c.file}: ${field} is ${JSON.stringify(entry)}, expected "r" or an expert count such as "8"`);
  if (entry[0] === 'r') {
    if (entry.length === 1) return { kind: 'M' };
    throw new MambalabError(`import: ${c.file}: ${field} is "${entry}", a Mamba block with a parallel MLP under its own norm, which mambalab's parallel layers (one pre-norm) cannot represent exactly; not imported`);
  }
  const experts = Number(entry.at(-1));
  if (!/^[0-9]+$/.test(entry) || !(experts >= 1)) throw new MambalabError(`import: ${c.file}: ${field} is "${entry}", expected "r" or an expert count such as "8"`);
  return entry[0] === '1' ? { kind: 'F' } : { kind: 'E', experts };
}

/** The released MLP's fc1 is [activated half; linear half] (glu: act(x[0]) · x[1]); mambalab's gated fc1 is [up; gate]. */
function gatedFc1(name: string, from: SourceTensor, hidden: number, d: number): ImportedTensor {
  return {
    name,
    shape: [2 * hidden, d],
    read() {
      const w = from.read();
      const out = new Float32Array(w.length);
      out.set(w.subarray(hidden * d), 0); // up: the linear half
      out.set(w.subarray(0, hidden * d), hidden * d); // gate: the activated half
      return out;
    },
  };
}

/** Experts' tensors stacked into one (experts, ...) tensor, as mambalab's MoE holds them. */
function stacked(name: string, parts: ImportedTensor[]): ImportedTensor {
  const shape = [parts.length, ...parts[0]!.shape];
  return {
    name,
    shape,
    read() {
      const size = parts[0]!.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(parts.length * size);
      parts.forEach((p, e) => out.set(p.read(), e * size));
      return out;
    },
  };
}

export function planBlackMamba(c: ConfigFields, source: TensorSource): ImportPlan {
  const t = new Tensors(source);
  const d = c.int('hidden_size');
  const layers = c.int('num_layers');
  const vocab = c.int('vocab_size');
  const dState = c.int('state_size');
  const dConv = c.int('conv_dimension');
  const expand = c.int('expansion_factor');
  const hidden = c.int('ffn_hidden_size', 4 * d); // MambaConfig's default
  if (c.bool('add_bias_linear', true)) c.refuse('add_bias_linear', 'puts biases on in_proj, out_proj, every MLP and the LM head, which mambalab\'s layers do not have');
  const gated = c.bool('swiglu', false);
  const entries = c.json['mamba_moe_layers'];
  if (!Array.isArray(entries) || entries.length < layers) {
    throw new MambalabError(`import: ${c.file}: mamba_moe_layers is ${JSON.stringify(entries)}, expected a list of num_layers (${layers}) entries`);
  }
  const kinds = entries.slice(0, layers).map((entry, i) => layerKind(c, entry, i));
  const expertCounts = [...new Set(kinds.flatMap((k) => (k.kind === 'E' ? [k.experts] : [])))];
  if (expertCounts.length > 1) c.refuse('mamba_moe_layers', `mixes expert counts (${expertCounts.join(', ')}); mambalab's MoE layers share one`);
  const experts = expertCounts[0] ?? 1;
  const dInner = expand * d;
  const mixer = { dModel: d, dInner, dtRank: Math.ceil(d / 16), dState, dConv };
  const fc1Rows = gated ? 2 * hidden : hidden;
  const ffn = (from: string, to: string): ImportedTensor[] => {
    const fc1 = t.take(`${from}linear_fc1.weight`, [fc1Rows, d]);
    return [gated ? gatedFc1(`${to}fc1.weight`, fc1, hidden, d) : copied(`${to}fc1.weight`, fc1), copied(`${to}fc2.weight`, t.take(`${from}linear_fc2.weight`, [d, hidden]))];
  };

  const embeddingName = 'embedding.word_embeddings.weight';
  const embedding = t.take(embeddingName, [vocab, d]);
  const tensors: ImportedTensor[] = [copied('backbone.embedding.weight', embedding)];
  kinds.forEach((k, i) => {
    const from = `decoder.layers.${i}.`;
    const to = `backbone.layers.${i}.`;
    tensors.push(copied(`${to}norm.weight`, t.take(`${from}norm.weight`, [d])));
    if (k.kind === 'M') {
      tensors.push(...mixerTensors(t, `${from}mixer.`, `${to}mixer.`, mixer, true));
    } else if (k.kind === 'F') {
      tensors.push(...ffn(`${from}mixer.`, `${to}mlp.`));
    } else {
      tensors.push(copied(`${to}moe.router.weight`, t.take(`${from}mixer.router.weight`, [experts, d])));
      const perExpert = Array.from({ length: experts }, (_, e) => ffn(`${from}mixer.local_experts.${e}.`, ''));
      tensors.push(stacked(`${to}moe.experts.fc1.weight`, perExpert.map((p) => p[0]!)));
      tensors.push(stacked(`${to}moe.experts.fc2.weight`, perExpert.map((p) => p[1]!)));
      tensors.push(copied(`${to}moe.router.bias`, t.take(`${from}mixer.router.bias`, [experts])));
    }
  });
  tensors.push(copied('backbone.norm_f.weight', t.take('decoder.final_layernorm.weight', [d])));
  tensors.push(copied('backbone.norm_f.bias', t.take('decoder.final_layernorm.bias', [d])));
  // from_pretrained ties output_layer to the embedding; a saved copy must hold the same values.
  if (t.has('output_layer.weight') && !sameValues(t.take('output_layer.weight', [vocab, d]), embedding)) {
    throw new MambalabError(`import: output_layer.weight in ${t.file} differs from ${embeddingName}; BlackMamba ties its LM head to the embedding, and so does mambalab`);
  }
  t.checkAllTaken('a BlackMamba of this config has none of them');
  const activation = gated ? 'geglu' : 'gelu';
  return {
    format: 'blackmamba',
    config: {
      model: 'blackmamba',
      vocabSize: vocab,
      padVocabMultiple: padMultipleFor(vocab, embedding.shape[0]!, t.file, embeddingName),
      dModel: d,
      pattern: patternOf(kinds.map((k) => k.kind)),
      dState,
      dConv,
      expand,
      dtRank: mixer.dtRank,
      normEps: 1e-5, // MambaConfig.layernorm_epsilon: from_pretrained reads no such field
      finalNorm: 'layernorm',
      dFF: hidden,
      mlpKind: activation,
      numExperts: experts,
      expertHidden: hidden,
      expertKind: activation,
      router: 'sinkhorn',
      routerBias: true,
      topK: 1,
      capacityFactor: 'dropless',
      auxLossWeight: 0,
    },
    tensors,
    tokenizer: 'neox',
    source: t.file,
  };
}
