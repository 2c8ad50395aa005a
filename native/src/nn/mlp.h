// The dense MLP layer ('F'): one feed-forward block (ffn.h) over every token.
#pragma once
#include <cmath>
#include <string>

#include "ffn.h"
#include "layer.h"
#include "params.h"

namespace ml {

template <class B>
class MlpLayer final : public Layer<B> {
 public:
  using Act = typename B::Act;

  // fc1 U(±1/sqrt(d)); fc2 U(±1/sqrt(hidden)) scaled by 1/sqrt(n_residual_layers), as the
  // reference rescales residual-branch outputs.
  MlpLayer(int64_t d_model, const FfnConfig& c, ParamStore<B>& params, const std::string& prefix,
           int64_t n_residual_layers)
      : d_(d_model), cfg_(c), p_(params) {
    ML_CHECK(c.hidden > 0, "mlp: hidden size must be positive, got ", c.hidden);
    fc1_ = p_.add(prefix + "fc1.weight", {c.fc1_rows(), d_}, true, ParamInit::uniform(1.0 / std::sqrt(double(d_))));
    fc2_ = p_.add(prefix + "fc2.weight", {d_, c.hidden}, true,
                  ParamInit::uniform(1.0 / std::sqrt(double(c.hidden)) / std::sqrt(double(n_residual_layers))));
  }

  void forward(const Act* x, Act* y, int64_t batch, int64_t len) override {
    x_ = x;
    batch_ = {1, batch * len};
    kept_ = buffers_.reserve(cfg_, batch_.total());
    ffn_forward(p_.backend(), cfg_, d_, weights(), batch_, x, y, kept_);
  }

  void backward(const Act* dy, Act* dx) override {
    ML_CHECK(x_ != nullptr, "mlp: backward called before forward");
    ffn_backward(p_.backend(), cfg_, d_, weights(), batch_, x_, kept_, dy, dx);
  }

 private:
  FfnWeights<B> weights() const { return {p_.compute(fc1_), p_.compute(fc2_), p_.grad(fc1_), p_.grad(fc2_)}; }

  int64_t d_;
  FfnConfig cfg_;
  ParamStore<B>& p_;
  size_t fc1_ = 0, fc2_ = 0;

  const Act* x_ = nullptr;
  FfnBatch batch_;
  FfnBuffers<B> buffers_;
  FfnActivations<B> kept_;
};

}  // namespace ml
