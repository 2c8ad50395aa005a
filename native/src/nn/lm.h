// A language model over a residual stream, the layout of mamba_ssm's MambaLMHeadModel:
//   r_1 = embed(tokens);  for each layer i: n_i = norm_i(r_i),  r_{i+1} = r_i + layer_i(n_i)
//   loss = cross_entropy(norm_f(r_L) · embeddingᵀ, next tokens)        (LM head tied)
// `layers` is an expanded layer pattern, one spec per layer separated by spaces: a letter
// (M Mamba mixer, E mixture of experts, F dense MLP) or a parallel group such as "M|E".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layer.h"
#include "mamba.h"
#include "moe.h"
#include "param.h"

namespace ml {

struct ModelConfig {
  int64_t vocab_size = 0;    // token ids must be below this
  int64_t padded_vocab = 0;  // embedding rows (≥ vocab_size)
  int64_t d_model = 0;
  std::string layers;
  double norm_eps = 1e-5;
  uint64_t seed = 0;
  MambaConfig mamba;
  FfnConfig mlp;  // 'F' layers
  MoeConfig moe;  // 'E' layers
};

template <typename T>
class LanguageModel {
 public:
  explicit LanguageModel(const ModelConfig& config);

  const ModelConfig& config() const { return cfg_; }
  ParamList<T>& params() { return params_; }

  // tokens: (batch, len + 1) row-major int32; inputs are tokens[:, :len], targets tokens[:, 1:].
  // Returns the mean next-token cross-entropy and keeps activations for backward().
  // `training` selects routers' training behaviour (Sinkhorn balancing).
  double forward(const int32_t* tokens, int64_t batch, int64_t len_plus_one, bool training = true);
  // Auxiliary (load-balancing) losses of the last forward, summed over layers.
  double aux_loss() const;
  // Routing of every mixture-of-experts layer in the last forward, in layer order.
  std::vector<const cpu::Routing*> routings() const;
  // Accumulates d(cross-entropy + aux_loss)/d(param) into every Param::grad. Needs a forward first.
  void backward();
  void zero_grad();

 private:
  ModelConfig cfg_;
  ParamList<T> params_;
  Param<T>* embedding_ = nullptr;
  Param<T>* norm_f_ = nullptr;
  std::vector<Param<T>*> norms_;
  std::vector<std::unique_ptr<Layer<T>>> layers_;

  std::unique_ptr<Layer<T>> make_layer(char kind, const std::string& prefix, int64_t index, int64_t n_layers);

  int64_t batch_ = 0, len_ = 0;
  std::vector<int32_t> inputs_, targets_;
  // residual_[i] is r_i (r_0 = embedding output); normed_[i] and rstd_[i] belong to norm i
  // (the last entry to norm_f); lse_ is the head's per-row log-sum-exp.
  std::vector<Tensor<T>> residual_, normed_, rstd_;
  Tensor<T> lse_;
};

}  // namespace ml
