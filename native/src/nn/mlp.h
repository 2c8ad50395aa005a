// The dense MLP layer ('F'): one feed-forward block on every token (see ffn.h).
#pragma once
#include <string>

#include "ffn.h"
#include "layer.h"
#include "param.h"

namespace ml {

template <typename T>
class MlpLayer final : public Layer<T> {
 public:
  // fc1 U(±1/sqrt(d)); fc2 U(±1/sqrt(hidden)) scaled by 1/sqrt(n_residual_layers), as the
  // reference rescales residual-branch outputs.
  MlpLayer(int64_t d_model, const FfnConfig& config, ParamList<T>& params, const std::string& prefix, uint64_t seed,
           int64_t n_residual_layers);

  void forward(const T* x, T* y, int64_t batch, int64_t len) override;
  void backward(const T* dy, T* dx) override;

 private:
  FfnWeights<T> weights();

  int64_t d_;
  FfnConfig cfg_;
  Param<T>&fc1_, &fc2_;
  FfnCache<T> cache_;
};

}  // namespace ml
