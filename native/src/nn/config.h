// A model's configuration as the engine reads it: the TypeScript ModelConfig (kernel/src/models/
// config.ts) field for field, with the layer pattern already parsed into layers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/router/router.h"

namespace ml {

// The Mamba mixer (nn/mamba.h).
struct MambaConfig {
  int64_t d_model = 0;
  int64_t d_state = 16;
  int64_t d_conv = 4;
  int64_t expand = 2;
  int64_t dt_rank = 0;  // 0: ceil(d_model / 16)
  double dt_min = 0.001, dt_max = 0.1, dt_init_floor = 1e-4;

  int64_t d_inner() const { return expand * d_model; }
  int64_t rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }
};

// The feed-forward block of dense MLP layers and of experts (nn/ffn.h).
// Gated kinds (SwiGLU, GeGLU) have fc1 = [up; gate] and multiply up by the gate's activation.
enum class FfnKind { Gelu, SwiGLU, GeGLU };

struct FfnConfig {
  FfnKind kind = FfnKind::Gelu;
  int64_t hidden = 0;
  bool gated() const { return kind != FfnKind::Gelu; }
  int64_t fc1_rows() const { return gated() ? 2 * hidden : hidden; }
};

// The mixture of experts (nn/moe.h).
struct MoeConfig {
  int64_t num_experts = 8;
  FfnConfig expert;
  RouterOptions router;
  bool router_bias = false;
};

// Causal self-attention (nn/attention.h): heads of d_model / heads dimensions, kv_heads key and
// value heads shared by groups of query heads (GQA), rotary position embeddings optional.
struct AttentionConfig {
  int64_t heads = 8;
  int64_t kv_heads = 8;
  bool rope = false;
  double rope_theta = 10000;
};

enum class NormKind { RmsNorm, LayerNorm };

// One layer of the residual stream: a kind, or a parallel group of distinct kinds whose
// outputs are summed. M Mamba mixer, E mixture of experts, F dense MLP, A attention.
using LayerSpec = std::vector<char>;

struct ModelConfig {
  int64_t vocab_size = 0;          // token ids must be below this
  int64_t pad_vocab_multiple = 8;  // the embedding has vocab_size rounded up to a multiple of this
  int64_t d_model = 0;
  std::vector<LayerSpec> layers;
  double norm_eps = 1e-5;
  uint64_t seed = 0;
  MambaConfig mamba;
  FfnConfig mlp;  // 'F' layers
  MoeConfig moe;  // 'E' layers
  AttentionConfig attention;  // 'A' layers
  int64_t max_positions = 0;  // > 0: learned absolute position embeddings for up to this many tokens
  // The norm before the LM head: RMSNorm (mamba_ssm's norm_f), or LayerNorm with a bias
  // (BlackMamba's final_layernorm). Every layer's own pre-norm is RMSNorm either way.
  NormKind final_norm = NormKind::RmsNorm;

  int64_t padded_vocab() const {
    return (vocab_size + pad_vocab_multiple - 1) / pad_vocab_multiple * pad_vocab_multiple;
  }
};

// "M E M|E": the layers as the pattern grammar writes them, for messages.
std::string describe_layers(const std::vector<LayerSpec>& layers);

}  // namespace ml
