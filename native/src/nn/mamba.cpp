#include "mamba.h"

#include <algorithm>
#include <cmath>

#include "../ops/a_log/a_log.h"
#include "../ops/conv1d/conv1d.h"
#include "../ops/linear/linear.h"
#include "../ops/selective_scan/selective_scan.h"
#include "init.h"

namespace ml {
namespace {

// A block of rows of a weight matrix used as a linear layer of its own: in_proj's x and z
// halves and x_proj's dt, B and C parts, so each output lands in its own contiguous tensor.
template <typename T>
struct WeightRows {
  Param<T>& p;
  int64_t first, count;
  int64_t in() const { return p.value.dim(1); }
  const T* w() const { return p.value.data() + first * in(); }
  T* dw() { return p.grad.data() + first * in(); }

  void forward(const T* x, T* y, int64_t rows) const { cpu::linear_forward<T>(x, w(), nullptr, y, rows, in(), count); }
  void backward(const T* x, const T* dy, T* dx, int64_t rows, bool accumulate_dx) {
    cpu::linear_backward<T>(x, w(), dy, dx, dw(), nullptr, rows, in(), count, accumulate_dx);
  }
};

}  // namespace

template <typename T>
MambaMixer<T>::MambaMixer(const MambaConfig& c, ParamList<T>& params, const std::string& prefix, uint64_t seed,
                          int64_t n_residual_layers)
    : cfg_(c),
      in_proj_(params.add(prefix + "in_proj.weight", {2 * c.d_inner(), c.d_model}, true)),
      conv_w_(params.add(prefix + "conv1d.weight", {c.d_inner(), c.d_conv}, true, {c.d_inner(), 1, c.d_conv})),
      conv_b_(params.add(prefix + "conv1d.bias", {c.d_inner()}, false)),
      x_proj_(params.add(prefix + "x_proj.weight", {c.rank() + 2 * c.d_state, c.d_inner()}, true)),
      dt_proj_w_(params.add(prefix + "dt_proj.weight", {c.d_inner(), c.rank()}, true)),
      dt_proj_b_(params.add(prefix + "dt_proj.bias", {c.d_inner()}, false)),
      A_log_(params.add(prefix + "A_log", {c.d_inner(), c.d_state}, false)),
      D_(params.add(prefix + "D", {c.d_inner()}, false)),
      out_proj_(params.add(prefix + "out_proj.weight", {c.d_model, c.d_inner()}, true)) {
  const int64_t Di = c.d_inner(), N = c.d_state;
  // nn.Linear / nn.Conv1d defaults: U(±1/sqrt(fan_in)).
  init_uniform(in_proj_, seed, 1.0 / std::sqrt(double(c.d_model)));
  init_uniform(conv_w_, seed, 1.0 / std::sqrt(double(c.d_conv)));
  init_uniform(conv_b_, seed, 1.0 / std::sqrt(double(c.d_conv)));
  init_uniform(x_proj_, seed, 1.0 / std::sqrt(double(Di)));
  init_uniform(dt_proj_w_, seed, 1.0 / std::sqrt(double(c.rank())));
  // dt_proj.bias = softplus⁻¹(dt), dt log-uniform in [dt_min, dt_max], floored.
  Rng rng(seed, name_stream(dt_proj_b_.name));
  for (int64_t i = 0; i < Di; ++i) {
    double dt = std::exp(rng.uniform() * (std::log(c.dt_max) - std::log(c.dt_min)) + std::log(c.dt_min));
    dt = std::max(dt, c.dt_init_floor);
    dt_proj_b_.value.data()[i] = T(dt + std::log(-std::expm1(-dt)));
  }
  // S4D-real: A = −(1, 2, …, d_state) for every channel.
  for (int64_t i = 0; i < Di; ++i)
    for (int64_t n = 0; n < N; ++n) A_log_.value.data()[i * N + n] = T(std::log(double(n + 1)));
  init_constant(D_, 1.0);
  init_uniform(out_proj_, seed, 1.0 / std::sqrt(double(Di)) / std::sqrt(double(n_residual_layers)));
}

template <typename T>
void MambaMixer<T>::forward(const T* u, T* out, int64_t batch, int64_t len) {
  const int64_t rows = batch * len, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
  if (batch != batch_ || len != len_) {
    batch_ = batch, len_ = len;
    u_ = Tensor<T>({rows, cfg_.d_model});
    x_ = Tensor<T>({rows, Di}), z_ = Tensor<T>({rows, Di}), xc_ = Tensor<T>({rows, Di});
    dt_low_ = Tensor<T>({rows, R}), B_ = Tensor<T>({rows, N}), C_ = Tensor<T>({rows, N});
    delta_ = Tensor<T>({rows, Di}), y_ = Tensor<T>({rows, Di}), A_ = Tensor<T>({Di, N});
  }
  std::copy_n(u, u_.numel(), u_.data());
  WeightRows<T>{in_proj_, 0, Di}.forward(u, x_.data(), rows);
  WeightRows<T>{in_proj_, Di, Di}.forward(u, z_.data(), rows);
  cpu::conv1d_forward<T>({batch, len, Di, cfg_.d_conv}, x_.data(), conv_w_.value.data(), conv_b_.value.data(),
                         xc_.data(), true);
  WeightRows<T>{x_proj_, 0, R}.forward(xc_.data(), dt_low_.data(), rows);
  WeightRows<T>{x_proj_, R, N}.forward(xc_.data(), B_.data(), rows);
  WeightRows<T>{x_proj_, R + N, N}.forward(xc_.data(), C_.data(), rows);
  cpu::linear_forward<T>(dt_low_.data(), dt_proj_w_.value.data(), nullptr, delta_.data(), rows, R, Di);
  cpu::a_log_forward<T>(A_log_.value.data(), A_.data(), A_.numel());
  const cpu::ScanInputs<T> in{xc_.data(), delta_.data(), A_.data(), B_.data(), C_.data(),
                              D_.value.data(), z_.data(), dt_proj_b_.value.data()};
  cpu::selective_scan_forward<T>({batch, len, Di, N}, in, y_.data());
  cpu::linear_forward<T>(y_.data(), out_proj_.value.data(), nullptr, out, rows, Di, cfg_.d_model);
}

template <typename T>
void MambaMixer<T>::backward(const T* dout, T* du) {
  ML_CHECK(batch_ > 0, "mamba mixer: backward called before forward");
  const int64_t rows = batch_ * len_, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
  Tensor<T> dy({rows, Di}), dxc({rows, Di}), ddelta({rows, Di}), dz({rows, Di}), dx({rows, Di});
  Tensor<T> dB({rows, N}), dC({rows, N}), ddt_low({rows, R}), dA = Tensor<T>::zeros({Di, N});

  cpu::linear_backward<T>(y_.data(), out_proj_.value.data(), dout, dy.data(), out_proj_.grad.data(), nullptr, rows, Di,
                          cfg_.d_model);
  const cpu::ScanInputs<T> in{xc_.data(), delta_.data(), A_.data(), B_.data(), C_.data(),
                              D_.value.data(), z_.data(), dt_proj_b_.value.data()};
  const cpu::ScanGrads<T> grads{dxc.data(), ddelta.data(), dA.data(), dB.data(), dC.data(),
                                D_.grad.data(), dz.data(), dt_proj_b_.grad.data()};
  cpu::selective_scan_backward<T>({batch_, len_, Di, N}, in, dy.data(), grads);
  cpu::a_log_backward<T>(A_.data(), dA.data(), A_log_.grad.data(), dA.numel());

  cpu::linear_backward<T>(dt_low_.data(), dt_proj_w_.value.data(), ddelta.data(), ddt_low.data(),
                          dt_proj_w_.grad.data(), nullptr, rows, R, Di);
  WeightRows<T>{x_proj_, 0, R}.backward(xc_.data(), ddt_low.data(), dxc.data(), rows, true);
  WeightRows<T>{x_proj_, R, N}.backward(xc_.data(), dB.data(), dxc.data(), rows, true);
  WeightRows<T>{x_proj_, R + N, N}.backward(xc_.data(), dC.data(), dxc.data(), rows, true);
  cpu::conv1d_backward<T>({batch_, len_, Di, cfg_.d_conv}, x_.data(), conv_w_.value.data(), conv_b_.value.data(),
                          dxc.data(), dx.data(), conv_w_.grad.data(), conv_b_.grad.data(), true);
  WeightRows<T>{in_proj_, 0, Di}.backward(u_.data(), dx.data(), du, rows, false);
  WeightRows<T>{in_proj_, Di, Di}.backward(u_.data(), dz.data(), du, rows, true);
}

template class MambaMixer<float>;
template class MambaMixer<double>;

}  // namespace ml
