// The Mamba mixer (Gu & Dao 2023, mamba_ssm's mamba_simple.Mamba), written as its equations:
//   x, z  = in_proj(u)                               d_model → 2·d_inner   (no bias)
//   x     = silu(conv1d(x))                          causal, depthwise, width d_conv, with bias
//   dt, B, C = x_proj(x)                             d_inner → dt_rank + 2·d_state (no bias)
//   delta = dt_proj.weight · dt                      its bias is added inside the scan
//   y     = selective_scan(x, delta, −exp(A_log), B, C, D, z, dt_proj.bias)
//   out   = out_proj(y)                              d_inner → d_model (no bias)
// in_proj's x and z halves and x_proj's dt, B and C rows are products of their own, so each
// lands in a contiguous tensor. The conv, scan and A parameters are read as master weights
// (fp32 on the GPU), as the reference keeps them.
// Generation keeps, per sequence, the conv's window (its last d_conv − 1 inputs x) and the
// scan's state h (fp32 on the GPU): prefill takes both from the parallel forward (the scan's
// final state), and a decode step runs the same equations for one token (ops/conv1d_step,
// ops/selective_scan_step), in time and memory independent of the length so far.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "../ops/conv1d/conv1d.h"
#include "../ops/conv1d_step/conv1d_step.h"
#include "../ops/mamba_input_step/mamba_input_step.h"
#include "../ops/selective_scan/selective_scan.h"
#include "../ops/selective_scan_step/selective_scan_step.h"
#include "config.h"
#include "layer.h"
#include "params.h"

namespace ml {

template <class B>
class MambaMixer final : public Layer<B> {
 public:
  using Act = typename B::Act;
  using Real = typename B::Real;

  // Declares the parameters under `prefix` (e.g. "backbone.layers.0.mixer.") with the
  // reference's initialisation; out_proj is scaled by 1/sqrt(n_residual_layers).
  MambaMixer(const MambaConfig& c, ParamStore<B>& params, const std::string& prefix, int64_t n_residual_layers)
      : cfg_(c), p_(params), b_(params.backend()) {
    const int64_t Di = c.d_inner(), N = c.d_state, R = c.rank();
    b_.check_mamba_shape(c.d_conv, c.d_state);
    // nn.Linear / nn.Conv1d defaults: U(±1/sqrt(fan_in)).
    const auto fan_in = [](int64_t n) { return ParamInit::uniform(1.0 / std::sqrt(double(n))); };
    in_proj_ = p_.add(prefix + "in_proj.weight", {2 * Di, c.d_model}, true, fan_in(c.d_model));
    conv_w_ = p_.add(prefix + "conv1d.weight", {Di, c.d_conv}, true, fan_in(c.d_conv), {Di, 1, c.d_conv});
    conv_b_ = p_.add(prefix + "conv1d.bias", {Di}, false, fan_in(c.d_conv));
    x_proj_ = p_.add(prefix + "x_proj.weight", {R + 2 * N, Di}, true, fan_in(Di));
    dt_proj_w_ = p_.add(prefix + "dt_proj.weight", {Di, R}, true, fan_in(R));
    dt_proj_b_ = p_.add(prefix + "dt_proj.bias", {Di}, false, ParamInit::dt_bias(c.dt_min, c.dt_max, c.dt_init_floor));
    A_log_ = p_.add(prefix + "A_log", {Di, N}, false, ParamInit::s4d_real(N));
    D_ = p_.add(prefix + "D", {Di}, false, ParamInit::constant(1.0));
    out_proj_ = p_.add(prefix + "out_proj.weight", {c.d_model, Di}, true,
                       ParamInit::uniform(1.0 / std::sqrt(double(Di)) / std::sqrt(double(n_residual_layers))));
  }

  void set_training(bool training) override { training_ = training; }

  void forward(const Act* u, Act* out, int64_t batch, int64_t len) override { run_forward(u, out, batch, len, nullptr); }

  void start_generation(int64_t batch, int64_t) override {
    const int64_t Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
    window_ = ActBuffer(batch * (cfg_.d_conv - 1) * Di, "mamba conv windows");
    state_ = RealBuffer(batch * Di * N, "mamba states");
    step_xz_ = ActBuffer(2 * batch * Di, "mamba step");
    for (auto* t : {&step_xc_, &step_y_}) *t = ActBuffer(batch * Di, "mamba step");
    step_xproj_ = ActBuffer(batch * (R + 2 * N), "mamba step");
    step_A_ = RealBuffer(Di * N, "mamba step");
    b_.a_log_forward(p_.master(A_log_), step_A_.get(), Di * N);
  }

  void prefill(const Act* u, Act* out, int64_t len, int64_t row) override {
    const int64_t Di = cfg_.d_inner(), N = cfg_.d_state, w = cfg_.d_conv - 1;
    run_forward(u, out, 1, len, state_.get() + row * Di * N);
    // The window is the last w inputs of the conv, zeros before the sequence's start.
    Act* window = window_.get() + row * w * Di;
    const int64_t kept = std::min(w, len);
    b_.zero(window, size_t((w - kept) * Di) * sizeof(Act));
    b_.copy(window + (w - kept) * Di, x_.get() + (len - kept) * Di, size_t(kept * Di) * sizeof(Act));
  }

  // The forward's products merged where a step allows: in_proj's halves as one batched product
  // of two (x then z, (rows, Di) each), x_proj as one product whose rows [dt_low | B | C] the
  // scan step reads directly, dt_proj inside the step. Five launches, each weight read once;
  // decode_from_residual makes it four, with the layer's pre-norm inside the first.
  void decode(const Act* u, Act* out, const DecodeStep& step) override {
    const int64_t rows = step.batch, d = cfg_.d_model, Di = cfg_.d_inner();
    Act* x = step_xz_.get();
    Act* z = x + rows * Di;
    b_.gemm_batched(false, true, rows, Di, d, 1.f, u, d, 0, p_.compute(in_proj_), d, Di * d, 0.f, x, Di, rows * Di, 2,
                    /*b_is_weight=*/true);
    b_.conv1d_step({rows, Di, cfg_.d_conv}, window_.get(), x, p_.master(conv_w_), p_.master(conv_b_), step_xc_.get(),
                   true);
    decode_from_conv(z, out, step);
  }
  // The same step from before the layer's pre-norm, with the norm, in_proj and conv step as one op.
  bool decode_from_residual(const PreNormInput<B>& in, Act* out, const DecodeStep& step) override {
    const int64_t rows = step.batch, Di = cfg_.d_inner();
    const cpu::MambaInputStepDims front{rows, cfg_.d_model, Di, cfg_.d_conv, in.eps};
    if (!b_.fuses_mamba_input_step(front)) return false;
    Act* z = step_xz_.get() + rows * Di;
    b_.mamba_input_step(front, in.x, in.residual, in.weight, in.residual_out, p_.compute(in_proj_), window_.get(),
                        p_.master(conv_w_), p_.master(conv_b_), step_xc_.get(), z);
    decode_from_conv(z, out, step);
    return true;
  }
  // x_proj, the scan step (dt_proj inside) and out_proj, from the conv step's output.
  void decode_from_conv(const Act* z, Act* out, const DecodeStep& step) {
    const int64_t rows = step.batch, d = cfg_.d_model, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
    b_.linear_forward(step_xc_.get(), p_.compute(x_proj_), nullptr, step_xproj_.get(), rows, Di, R + 2 * N);
    const ScanInputs<Act, Real> in{step_xc_.get(), nullptr, nullptr, nullptr, z, step_A_.get(), p_.master(D_),
                                   p_.master(dt_proj_b_)};
    b_.scan_step({rows, Di, N}, in, {step_xproj_.get(), p_.compute(dt_proj_w_), R}, state_.get(), step_y_.get());
    b_.linear_forward(step_y_.get(), p_.compute(out_proj_), nullptr, out, rows, Di, d);
  }

  void backward(const Act* dout, Act* du) override {
    ML_CHECK(batch_ > 0 && training_, "mamba mixer: backward needs a training forward first");
    const int64_t rows = batch_ * len_, d = cfg_.d_model, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
    ActBuffer dy(rows * Di, "mamba backward"), dxc(rows * Di, "mamba backward"), ddelta(rows * Di, "mamba backward");
    ActBuffer dz(rows * Di, "mamba backward"), dB(rows * N, "mamba backward"), dC(rows * N, "mamba backward");
    ActBuffer ddt_low(rows * R, "mamba backward");
    RealBuffer dA(Di * N, "mamba backward");
    b_.zero(dA.get(), dA.bytes());

    b_.linear_backward(y_.get(), p_.compute(out_proj_), dout, dy.get(), p_.grad(out_proj_), nullptr, rows, Di, d,
                       false);
    const ScanGrads<Act, Real> grads{dxc.get(), ddelta.get(), dB.get(), dC.get(), dz.get(),
                                     dA.get(), p_.grad(D_),   p_.grad(dt_proj_b_)};
    b_.scan_backward(dims(), inputs(), dy.get(), checkpoints_.get(), grads);
    b_.a_log_backward(A_.get(), dA.get(), p_.grad(A_log_), Di * N);

    b_.linear_backward(dt_low_.get(), p_.compute(dt_proj_w_), ddelta.get(), ddt_low.get(), p_.grad(dt_proj_w_),
                       nullptr, rows, R, Di, false);
    const Act* w_x = p_.compute(x_proj_);
    Real* dw_x = p_.grad(x_proj_);
    b_.linear_backward(xc_.get(), w_x, ddt_low.get(), dxc.get(), dw_x, nullptr, rows, Di, R, true);
    b_.linear_backward(xc_.get(), w_x + R * Di, dB.get(), dxc.get(), dw_x + R * Di, nullptr, rows, Di, N, true);
    b_.linear_backward(xc_.get(), w_x + (R + N) * Di, dC.get(), dxc.get(), dw_x + (R + N) * Di, nullptr, rows, Di, N,
                       true);
    Act* dx = dy.get();  // dy is spent: its buffer takes the conv's input gradient
    b_.conv1d_backward({batch_, len_, Di, cfg_.d_conv}, x_.get(), p_.master(conv_w_), p_.master(conv_b_), dxc.get(),
                       dx, p_.grad(conv_w_), p_.grad(conv_b_), true);
    const Act* w_in = p_.compute(in_proj_);
    Real* dw_in = p_.grad(in_proj_);
    b_.linear_backward(u_, w_in, dx, du, dw_in, nullptr, rows, d, Di, false);
    b_.linear_backward(u_, w_in + Di * d, dz.get(), du, dw_in + Di * d, nullptr, rows, d, Di, true);
  }

 private:
  using ActBuffer = typename B::template Buffer<Act>;
  using RealBuffer = typename B::template Buffer<Real>;

  // forward, also writing the scan's final state when `final_state` is given (prefill).
  void run_forward(const Act* u, Act* out, int64_t batch, int64_t len, Real* final_state) {
    const int64_t rows = batch * len, d = cfg_.d_model, Di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank();
    if (batch != batch_ || len != len_) {
      batch_ = batch, len_ = len;
      for (auto* t : {&x_, &z_, &xc_, &delta_, &y_}) *t = ActBuffer(rows * Di, "mamba activations");
      dt_low_ = ActBuffer(rows * R, "mamba activations");
      B_ = ActBuffer(rows * N, "mamba activations");
      C_ = ActBuffer(rows * N, "mamba activations");
      A_ = RealBuffer(Di * N, "mamba activations");
      checkpoints_ = RealBuffer(b_.scan_checkpoint_elements(dims()), "scan checkpoints");
    }
    u_ = u;
    const Act* w_in = p_.compute(in_proj_);
    const Act* w_x = p_.compute(x_proj_);
    b_.linear_forward(u, w_in, nullptr, x_.get(), rows, d, Di);
    b_.linear_forward(u, w_in + Di * d, nullptr, z_.get(), rows, d, Di);
    b_.conv1d_forward({batch, len, Di, cfg_.d_conv}, x_.get(), p_.master(conv_w_), p_.master(conv_b_), xc_.get(), true);
    b_.linear_forward(xc_.get(), w_x, nullptr, dt_low_.get(), rows, Di, R);
    b_.linear_forward(xc_.get(), w_x + R * Di, nullptr, B_.get(), rows, Di, N);
    b_.linear_forward(xc_.get(), w_x + (R + N) * Di, nullptr, C_.get(), rows, Di, N);
    b_.linear_forward(dt_low_.get(), p_.compute(dt_proj_w_), nullptr, delta_.get(), rows, R, Di);
    b_.a_log_forward(p_.master(A_log_), A_.get(), Di * N);
    b_.scan_forward(dims(), inputs(), y_.get(), training_ ? checkpoints_.get() : nullptr, final_state);
    b_.linear_forward(y_.get(), p_.compute(out_proj_), nullptr, out, rows, Di, d);
  }

  ScanDims dims() const { return {batch_, len_, cfg_.d_inner(), cfg_.d_state}; }
  ScanInputs<Act, Real> inputs() const {
    return {xc_.get(), delta_.get(), B_.get(), C_.get(), z_.get(), A_.get(), p_.master(D_), p_.master(dt_proj_b_)};
  }

  MambaConfig cfg_;
  ParamStore<B>& p_;
  const B& b_;
  size_t in_proj_, conv_w_, conv_b_, x_proj_, dt_proj_w_, dt_proj_b_, A_log_, D_, out_proj_;
  bool training_ = true;

  int64_t batch_ = 0, len_ = 0;
  const Act* u_ = nullptr;
  // Activations kept for the backward, (batch·len, ·) rows; A = −exp(A_log) as a master weight.
  ActBuffer x_, z_, xc_, dt_low_, B_, C_, delta_, y_;
  RealBuffer A_, checkpoints_;
  // Generation: per sequence the conv window (d_conv − 1, d_inner) and the scan state
  // (d_inner, d_state); a decode step's activations, (batch, ·); A for the steps.
  ActBuffer window_, step_xz_, step_xc_, step_xproj_, step_y_;
  RealBuffer state_, step_A_;
};

}  // namespace ml
