// The Mamba mixer (Gu & Dao 2023, mamba_ssm's mamba_simple.Mamba), written as its equations:
//   x, z  = in_proj(u)                               d_model → 2·d_inner   (no bias)
//   x     = silu(conv1d(x))                          causal, depthwise, width d_conv, with bias
//   dt, B, C = x_proj(x)                             d_inner → dt_rank + 2·d_state (no bias)
//   delta = dt_proj.weight · dt                      its bias is added inside the scan
//   y     = selective_scan(x, delta, −exp(A_log), B, C, D, z, dt_proj.bias)
//   out   = out_proj(y)                              d_inner → d_model (no bias)
#pragma once
#include <cstdint>
#include <string>

#include "layer.h"
#include "param.h"

namespace ml {

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

template <typename T>
class MambaMixer final : public Layer<T> {
 public:
  // Registers parameters under `prefix` (e.g. "backbone.layers.0.mixer.") and initialises them
  // as the reference does; out_proj is scaled by 1/sqrt(n_residual_layers).
  MambaMixer(const MambaConfig& config, ParamList<T>& params, const std::string& prefix, uint64_t seed,
             int64_t n_residual_layers);

  void forward(const T* u, T* out, int64_t batch, int64_t len) override;
  void backward(const T* dout, T* du) override;

 private:
  MambaConfig cfg_;
  Param<T>&in_proj_, &conv_w_, &conv_b_, &x_proj_, &dt_proj_w_, &dt_proj_b_, &A_log_, &D_, &out_proj_;
  int64_t batch_ = 0, len_ = 0;
  // Activations kept for the backward, (batch·len, ·) rows.
  Tensor<T> u_, x_, z_, xc_, dt_low_, B_, C_, delta_, A_, y_;
};

}  // namespace ml
