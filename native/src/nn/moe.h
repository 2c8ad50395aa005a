// The mixture-of-experts layer ('E'): a router sends each token to its top-k experts
// (feed-forward blocks, see ffn.h); the output is the gate-weighted sum of their outputs.
// Dropped assignments (over capacity) contribute nothing: the token passes through the
// residual stream. MoE-Mamba: switch router, GELU experts; BlackMamba: Sinkhorn router with
// bias, SwiGLU experts.
#pragma once
#include <string>
#include <vector>

#include "../ops/router/router.h"
#include "ffn.h"
#include "layer.h"
#include "param.h"

namespace ml {

struct MoeConfig {
  int64_t num_experts = 8;
  FfnConfig expert;
  cpu::RouterOptions router;
  bool router_bias = false;
};

template <typename T>
class MoeLayer final : public Layer<T> {
 public:
  // Parameters: router.weight (E, d), router.bias (E) if enabled, experts.fc1.weight
  // (E, fc1_rows, d), experts.fc2.weight (E, d, hidden); initialised per expert as the MLP.
  MoeLayer(int64_t d_model, const MoeConfig& config, ParamList<T>& params, const std::string& prefix, uint64_t seed,
           int64_t n_residual_layers);

  void forward(const T* x, T* y, int64_t batch, int64_t len) override;
  void backward(const T* dy, T* dx) override;
  void set_training(bool training) override { cfg_.router.training = training; }
  double aux_loss() const override { return routing_.aux_loss; }
  void routings(std::vector<const cpu::Routing*>& out) const override { out.push_back(&routing_); }

 private:
  FfnWeights<T> expert_weights(int64_t e);

  int64_t d_;
  MoeConfig cfg_;
  Param<T>& router_w_;
  Param<T>* router_b_ = nullptr;
  Param<T>&fc1_, &fc2_;

  // Last forward: input, router logits/probabilities, gates and routing; per expert the
  // assignments it took (indices into gates), its feed-forward cache and its outputs.
  Tensor<T> x_, logits_, probs_, gates_;
  cpu::Routing routing_;
  std::vector<std::vector<int64_t>> assigned_;
  std::vector<FfnCache<T>> caches_;
  std::vector<Tensor<T>> outputs_;
};

}  // namespace ml
