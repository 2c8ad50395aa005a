// Causal self-attention ('A'), pre-normed like every layer, without biases:
//   q, k, v = in_proj(x)            d_model → (heads + 2·kv_heads)·head_dim, rows [q; k; v]
//   q, k    = rope(q), rope(k)      when rope is on (ops/rope)
//   o       = attention(q, k, v)    causal, grouped-query (ops/attention)
//   out     = out_proj(o)           heads·head_dim → d_model
// head_dim = d_model / heads. q, k and v are products of their own, each into a contiguous
// tensor; rope rotates them in place, and the backward rotates their gradients back.
// Generation keeps each sequence's (rotated) keys and values in a cache of `capacity` rows:
// prefill copies the parallel forward's, and a decode step appends one row per sequence and
// attends over the rows so far (ops/attention_decode), rotating at each sequence's position.
#pragma once
#include <cmath>
#include <string>

#include "../ops/attention/attention.h"
#include "../ops/attention_decode/attention_decode.h"
#include "../ops/rope/rope.h"
#include "config.h"
#include "layer.h"
#include "params.h"

namespace ml {

template <class B>
class AttentionLayer final : public Layer<B> {
 public:
  using Act = typename B::Act;
  using Real = typename B::Real;

  AttentionLayer(int64_t d_model, const AttentionConfig& c, ParamStore<B>& params, const std::string& prefix,
                 int64_t n_residual_layers)
      : d_(d_model), cfg_(c), p_(params), b_(params.backend()) {
    ML_CHECK(c.heads >= 1 && d_model % c.heads == 0, "attention: heads (", c.heads, ") must divide d_model (",
             d_model, ")");
    ML_CHECK(c.kv_heads >= 1 && c.heads % c.kv_heads == 0, "attention: kv_heads (", c.kv_heads,
             ") must divide heads (", c.heads, ")");
    dh_ = d_model / c.heads;
    ML_CHECK(!c.rope || dh_ % 2 == 0, "attention: rope needs an even head dimension (d_model / heads), got ", dh_);
    b_.check_attention_shape(dh_);
    in_proj_ = p_.add(prefix + "in_proj.weight", {(c.heads + 2 * c.kv_heads) * dh_, d_model}, true,
                      ParamInit::uniform(1.0 / std::sqrt(double(d_model))));
    const double out_bound = 1.0 / std::sqrt(double(c.heads * dh_)) / std::sqrt(double(n_residual_layers));
    out_proj_ = p_.add(prefix + "out_proj.weight", {d_model, c.heads * dh_}, true, ParamInit::uniform(out_bound));
  }

  void forward(const Act* x, Act* y, int64_t batch, int64_t len) override {
    const int64_t rows = batch * len, qd = cfg_.heads * dh_, kvd = cfg_.kv_heads * dh_;
    if (batch != batch_ || len != len_) {
      batch_ = batch, len_ = len;
      q_ = ActBuffer(rows * qd, "attention activations"), o_ = ActBuffer(rows * qd, "attention activations");
      k_ = ActBuffer(rows * kvd, "attention activations"), v_ = ActBuffer(rows * kvd, "attention activations");
      lse_ = RealBuffer(batch * cfg_.heads * len, "attention statistics");
    }
    x_ = x;
    const Act* w = p_.compute(in_proj_);
    b_.linear_forward(x, w, nullptr, q_.get(), rows, d_, qd);
    b_.linear_forward(x, w + qd * d_, nullptr, k_.get(), rows, d_, kvd);
    b_.linear_forward(x, w + (qd + kvd) * d_, nullptr, v_.get(), rows, d_, kvd);
    if (cfg_.rope) {
      b_.rope_forward({batch, len, cfg_.heads, dh_}, cfg_.rope_theta, q_.get(), q_.get());
      b_.rope_forward({batch, len, cfg_.kv_heads, dh_}, cfg_.rope_theta, k_.get(), k_.get());
    }
    b_.attention_forward(dims(), q_.get(), k_.get(), v_.get(), o_.get(), lse_.get());
    b_.linear_forward(o_.get(), p_.compute(out_proj_), nullptr, y, rows, qd, d_);
  }

  void start_generation(int64_t batch, int64_t capacity) override {
    const int64_t qd = cfg_.heads * dh_, kvd = cfg_.kv_heads * dh_;
    capacity_ = capacity;
    k_cache_ = ActBuffer(batch * capacity * kvd, "attention KV cache");
    v_cache_ = ActBuffer(batch * capacity * kvd, "attention KV cache");
    step_q_ = ActBuffer(batch * qd, "attention step"), step_o_ = ActBuffer(batch * qd, "attention step");
    step_k_ = ActBuffer(batch * kvd, "attention step"), step_v_ = ActBuffer(batch * kvd, "attention step");
    step_scratch_ = RealBuffer(b_.attention_decode_scratch(step_dims(batch)), "attention step");
  }

  void prefill(const Act* x, Act* y, int64_t len, int64_t row) override {
    ML_CHECK(len <= capacity_, "attention: a prompt of ", len, " tokens exceeds the KV cache of ", capacity_);
    forward(x, y, 1, len);
    const int64_t kvd = cfg_.kv_heads * dh_;
    const size_t bytes = size_t(len * kvd) * sizeof(Act);
    b_.copy(k_cache_.get() + row * capacity_ * kvd, k_.get(), bytes);
    b_.copy(v_cache_.get() + row * capacity_ * kvd, v_.get(), bytes);
  }

  void decode(const Act* x, Act* y, const DecodeStep& step) override {
    const int64_t rows = step.batch, qd = cfg_.heads * dh_, kvd = cfg_.kv_heads * dh_;
    const Act* w = p_.compute(in_proj_);
    b_.linear_forward(x, w, nullptr, step_q_.get(), rows, d_, qd);
    b_.linear_forward(x, w + qd * d_, nullptr, step_k_.get(), rows, d_, kvd);
    b_.linear_forward(x, w + (qd + kvd) * d_, nullptr, step_v_.get(), rows, d_, kvd);
    if (cfg_.rope) {
      b_.rope_forward({rows, 1, cfg_.heads, dh_, step.positions}, cfg_.rope_theta, step_q_.get(), step_q_.get());
      b_.rope_forward({rows, 1, cfg_.kv_heads, dh_, step.positions}, cfg_.rope_theta, step_k_.get(), step_k_.get());
    }
    b_.attention_decode(step_dims(rows), step_q_.get(), step_k_.get(), step_v_.get(), k_cache_.get(), v_cache_.get(),
                        step.positions, step_o_.get(), step_scratch_.get());
    b_.linear_forward(step_o_.get(), p_.compute(out_proj_), nullptr, y, rows, qd, d_);
  }

  void backward(const Act* dy, Act* dx) override {
    ML_CHECK(x_ != nullptr, "attention: backward called before forward");
    const int64_t rows = batch_ * len_, qd = cfg_.heads * dh_, kvd = cfg_.kv_heads * dh_;
    ActBuffer d_o(rows * qd, "attention backward"), dq(rows * qd, "attention backward");
    ActBuffer dk(rows * kvd, "attention backward"), dv(rows * kvd, "attention backward");
    b_.linear_backward(o_.get(), p_.compute(out_proj_), dy, d_o.get(), p_.grad(out_proj_), nullptr, rows, qd, d_,
                       false);
    b_.attention_backward(dims(), q_.get(), k_.get(), v_.get(), o_.get(), lse_.get(), d_o.get(), dq.get(), dk.get(),
                          dv.get());
    if (cfg_.rope) {
      b_.rope_backward({batch_, len_, cfg_.heads, dh_}, cfg_.rope_theta, dq.get(), dq.get());
      b_.rope_backward({batch_, len_, cfg_.kv_heads, dh_}, cfg_.rope_theta, dk.get(), dk.get());
    }
    const Act* w = p_.compute(in_proj_);
    Real* dw = p_.grad(in_proj_);
    b_.linear_backward(x_, w, dq.get(), dx, dw, nullptr, rows, d_, qd, false);
    b_.linear_backward(x_, w + qd * d_, dk.get(), dx, dw + qd * d_, nullptr, rows, d_, kvd, true);
    b_.linear_backward(x_, w + (qd + kvd) * d_, dv.get(), dx, dw + (qd + kvd) * d_, nullptr, rows, d_, kvd, true);
  }

 private:
  using ActBuffer = typename B::template Buffer<Act>;
  using RealBuffer = typename B::template Buffer<Real>;

  cpu::AttentionDims dims() const { return {batch_, len_, cfg_.heads, cfg_.kv_heads, dh_}; }
  cpu::AttentionDecodeDims step_dims(int64_t rows) const { return {rows, capacity_, cfg_.heads, cfg_.kv_heads, dh_}; }

  int64_t d_, dh_ = 0;
  AttentionConfig cfg_;
  ParamStore<B>& p_;
  const B& b_;
  size_t in_proj_ = 0, out_proj_ = 0;

  int64_t batch_ = 0, len_ = 0;
  const Act* x_ = nullptr;
  // Kept for the backward: the (rotated) q and k, v, the attention's output and log-sum-exps.
  ActBuffer q_, k_, v_, o_;
  RealBuffer lse_;
  // Generation: (batch, capacity, kv_heads, head_dim) keys and values; a decode step's q, k, v, o
  // and the scratch of its split cache (kept here: a CUDA graph replays the step with it).
  int64_t capacity_ = 0;
  ActBuffer k_cache_, v_cache_, step_q_, step_k_, step_v_, step_o_;
  RealBuffer step_scratch_;
};

}  // namespace ml
