#include "mamba.h"

#include <cuda_runtime.h>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../ops/a_log/a_log.h"
#include "../../ops/conv1d/conv1d.h"
#include "../../ops/linear/linear.h"
#include "../../ops/selective_scan/selective_scan.h"

namespace ml::cuda {

template <typename T>
MambaMixer<T>::MambaMixer(const MambaConfig& c, DeviceParams<T>& params, const std::string& prefix,
                          const Context& context)
    : cfg_(c),
      params_(params),
      ctx_(context),
      in_proj_(params.index(prefix + "in_proj.weight")),
      conv_w_(params.index(prefix + "conv1d.weight")),
      conv_b_(params.index(prefix + "conv1d.bias")),
      x_proj_(params.index(prefix + "x_proj.weight")),
      dt_proj_w_(params.index(prefix + "dt_proj.weight")),
      dt_proj_b_(params.index(prefix + "dt_proj.bias")),
      A_log_(params.index(prefix + "A_log")),
      D_(params.index(prefix + "D")),
      out_proj_(params.index(prefix + "out_proj.weight")) {
  ML_CHECK(c.d_conv <= 4, "mamba mixer (cuda): d_conv must be at most 4, got ", c.d_conv);
  ML_CHECK(c.d_state == 2 || c.d_state == 4 || c.d_state == 8 || c.d_state == 16,
           "mamba mixer (cuda): d_state must be 2, 4, 8 or 16, got ", c.d_state);
}

template <typename T>
void MambaMixer<T>::forward(const T* u, T* out, int64_t batch, int64_t len) {
  const int64_t rows = batch * len, d = cfg_.d_model, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
  const cudaStream_t s = ctx_.stream;
  if (batch != batch_ || len != len_) {
    batch_ = batch, len_ = len;
    for (auto* t : {&x_, &z_, &xc_, &delta_, &y_}) *t = DeviceBuffer<T>(rows * Di, "mamba activations");
    dt_low_ = DeviceBuffer<T>(rows * R, "mamba activations");
    B_ = DeviceBuffer<T>(rows * N, "mamba activations");
    C_ = DeviceBuffer<T>(rows * N, "mamba activations");
    A_ = DeviceBuffer<float>(Di * N, "mamba activations");
    checkpoints_ = DeviceBuffer<float>(scan_checkpoint_elements({batch, len, Di, N}, ctx_.scan), "scan checkpoints");
  }
  u_ = u;
  const T* w_in = params_.compute(in_proj_);
  const T* w_x = params_.compute(x_proj_);
  // in_proj's x and z halves, and x_proj's dt, B and C rows, each into its own tensor.
  linear_forward<T>(u, w_in, nullptr, x_.get(), rows, d, Di, s);
  linear_forward<T>(u, w_in + Di * d, nullptr, z_.get(), rows, d, Di, s);
  conv1d_forward<T>({batch, len, Di, cfg_.d_conv}, x_.get(), params_.master(conv_w_), params_.master(conv_b_),
                    xc_.get(), true, s);
  linear_forward<T>(xc_.get(), w_x, nullptr, dt_low_.get(), rows, Di, R, s);
  linear_forward<T>(xc_.get(), w_x + R * Di, nullptr, B_.get(), rows, Di, N, s);
  linear_forward<T>(xc_.get(), w_x + (R + N) * Di, nullptr, C_.get(), rows, Di, N, s);
  linear_forward<T>(dt_low_.get(), params_.compute(dt_proj_w_), nullptr, delta_.get(), rows, R, Di, s);
  a_log_forward(params_.master(A_log_), A_.get(), Di * N, s);
  const ScanInputs<T> in{xc_.get(), delta_.get(), B_.get(), C_.get(), z_.get(),
                         A_.get(), params_.master(D_), params_.master(dt_proj_b_)};
  selective_scan_forward<T>({batch, len, Di, N}, in, y_.get(), training_ ? checkpoints_.get() : nullptr, ctx_.scan, s);
  linear_forward<T>(y_.get(), params_.compute(out_proj_), nullptr, out, rows, Di, d, s);
}

template <typename T>
void MambaMixer<T>::backward(const T* dout, T* du) {
  ML_CHECK(batch_ > 0 && training_, "mamba mixer (cuda): backward needs a training forward first");
  const int64_t rows = batch_ * len_, d = cfg_.d_model, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
  const cudaStream_t s = ctx_.stream;
  DeviceBuffer<T> dy(rows * Di, "mamba backward"), dxc(rows * Di, "mamba backward"), ddelta(rows * Di, "mamba backward");
  DeviceBuffer<T> dz(rows * Di, "mamba backward"), dB(rows * N, "mamba backward"), dC(rows * N, "mamba backward");
  DeviceBuffer<T> ddt_low(rows * R, "mamba backward");
  DeviceBuffer<float> dA(Di * N, "mamba backward");
  ML_CUDA_CHECK("mamba backward", cudaMemsetAsync(dA.get(), 0, dA.bytes(), s));

  linear_backward<T>(y_.get(), params_.compute(out_proj_), dout, dy.get(), params_.grad(out_proj_), nullptr, rows, Di,
                     d, false, s);
  const ScanInputs<T> in{xc_.get(), delta_.get(), B_.get(), C_.get(), z_.get(),
                         A_.get(), params_.master(D_), params_.master(dt_proj_b_)};
  const ScanGrads<T> grads{dxc.get(), ddelta.get(), dB.get(), dC.get(), dz.get(),
                           dA.get(), params_.grad(D_), params_.grad(dt_proj_b_)};
  selective_scan_backward<T>({batch_, len_, Di, N}, in, dy.get(), checkpoints_.get(), grads, ctx_.scan, s);
  a_log_backward(A_.get(), dA.get(), params_.grad(A_log_), Di * N, s);

  linear_backward<T>(dt_low_.get(), params_.compute(dt_proj_w_), ddelta.get(), ddt_low.get(), params_.grad(dt_proj_w_),
                     nullptr, rows, R, Di, false, s);
  const T* w_x = params_.compute(x_proj_);
  float* dw_x = params_.grad(x_proj_);
  linear_backward<T>(xc_.get(), w_x, ddt_low.get(), dxc.get(), dw_x, nullptr, rows, Di, R, true, s);
  linear_backward<T>(xc_.get(), w_x + R * Di, dB.get(), dxc.get(), dw_x + R * Di, nullptr, rows, Di, N, true, s);
  linear_backward<T>(xc_.get(), w_x + (R + N) * Di, dC.get(), dxc.get(), dw_x + (R + N) * Di, nullptr, rows, Di, N,
                     true, s);
  T* dx = dy.get();  // dy is spent: its buffer takes the conv's input gradient
  conv1d_backward<T>({batch_, len_, Di, cfg_.d_conv}, x_.get(), params_.master(conv_w_), params_.master(conv_b_),
                     dxc.get(), dx, params_.grad(conv_w_), params_.grad(conv_b_), true, s);
  const T* w_in = params_.compute(in_proj_);
  float* dw_in = params_.grad(in_proj_);
  linear_backward<T>(u_, w_in, dx, du, dw_in, nullptr, rows, d, Di, false, s);
  linear_backward<T>(u_, w_in + Di * d, dz.get(), du, dw_in + Di * d, nullptr, rows, d, Di, true, s);
}

template class MambaMixer<float>;
template class MambaMixer<bf16>;

}  // namespace ml::cuda
