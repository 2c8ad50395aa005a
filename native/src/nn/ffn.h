// The feed-forward block of dense MLP layers and of experts, on rows of d_model:
//   gelu:   y = fc2(gelu(fc1(x)))                  fc1 (hidden, d), fc2 (d, hidden)
//   swiglu: y = fc2(up · silu(gate)), up and gate the two halves of fc1(x)
//                                                  fc1 (2·hidden, d) [up; gate], as mamba_ssm's GatedMLP
//   geglu:  y = fc2(up · gelu(gate)), the same layout (BlackMamba's released experts)
// No biases. `groups` independent blocks of `rows` rows each, group g reading rows
// [g·rows, (g+1)·rows) and its own weights (a stacked tensor of experts), as batched GEMMs.
// Rows of zeros stay zeros and add nothing to the weight gradients when their dy is zero too,
// so experts can be padded to a common size. SwiGLU's halves are two products into two arrays,
// so the elementwise ops see contiguous inputs.
#pragma once
#include <cstdint>

#include "config.h"

namespace ml {

template <class B>
struct FfnWeights {
  const typename B::Act *fc1, *fc2;  // (groups, fc1_rows, d), (groups, d, hidden)
  typename B::Real *dfc1, *dfc2;     // gradients, accumulated

  // The weights of group g of a stacked tensor (an expert).
  FfnWeights group(int64_t g, const FfnConfig& cfg, int64_t d) const {
    const int64_t fc1_size = cfg.fc1_rows() * d, fc2_size = d * cfg.hidden;
    return {fc1 + g * fc1_size, fc2 + g * fc2_size, dfc1 + g * fc1_size, dfc2 + g * fc2_size};
  }
};

struct FfnBatch {
  int64_t groups = 1, rows = 0;
  int64_t total() const { return groups * rows; }
};

// What the forward keeps for the backward, (rows, hidden) each: fc1's output (GELU: the
// pre-activation; SwiGLU: the up half), SwiGLU's gate half (null for GELU), the activation.
template <class B>
struct FfnActivations {
  typename B::Act *up = nullptr, *gate = nullptr, *act = nullptr;

  FfnActivations from_row(int64_t row, int64_t hidden) const {
    return {up + row * hidden, gate ? gate + row * hidden : nullptr, act + row * hidden};
  }
};

// Owns FfnActivations for `rows` rows; reallocates only when the size changes.
template <class B>
class FfnBuffers {
 public:
  FfnActivations<B> reserve(const FfnConfig& cfg, int64_t rows) {
    const int64_t n = rows * cfg.hidden;
    const bool gated = cfg.gated();
    if (up_.size() != n) {
      up_ = Buffer(n, "ffn activations");
      act_ = Buffer(n, "ffn activations");
    }
    if (gated && gate_.size() != n) gate_ = Buffer(n, "ffn activations");
    return {up_.get(), gated ? gate_.get() : nullptr, act_.get()};
  }

 private:
  using Buffer = typename B::template Buffer<typename B::Act>;
  Buffer up_, gate_, act_;
};

// y (batch.total(), d) is overwritten; `keep` is filled for the backward.
template <class B>
void ffn_forward(const B& b, const FfnConfig& cfg, int64_t d, const FfnWeights<B>& w, FfnBatch batch,
                 const typename B::Act* x, typename B::Act* y, const FfnActivations<B>& keep) {
  const int64_t H = cfg.hidden, R = cfg.fc1_rows(), n = batch.rows, G = batch.groups;
  if (batch.total() <= 0) return;
  // fc1, per half: (n, H) = x (n, d) · W (H, d)ᵀ
  b.gemm_batched(false, true, n, H, d, 1.f, x, d, n * d, w.fc1, d, R * d, 0.f, keep.up, H, n * H, G, true);
  if (cfg.gated()) {
    b.gemm_batched(false, true, n, H, d, 1.f, x, d, n * d, w.fc1 + H * d, d, R * d, 0.f, keep.gate, H, n * H, G, true);
    if (cfg.kind == FfnKind::SwiGLU) {
      b.swiglu_forward(keep.gate, keep.up, keep.act, G * n * H);
    } else {
      b.geglu_forward(keep.gate, keep.up, keep.act, G * n * H);
    }
  } else {
    b.gelu_forward(keep.up, keep.act, G * n * H);
  }
  // fc2: (n, d) = act (n, H) · W2 (d, H)ᵀ
  b.gemm_batched(false, true, n, d, H, 1.f, keep.act, H, n * H, w.fc2, H, d * H, 0.f, y, d, n * d, G, true);
}

// x is the forward's input; dx is overwritten; the weight gradients accumulate.
template <class B>
void ffn_backward(const B& b, const FfnConfig& cfg, int64_t d, const FfnWeights<B>& w, FfnBatch batch,
                  const typename B::Act* x, const FfnActivations<B>& kept, const typename B::Act* dy,
                  typename B::Act* dx) {
  using Buffer = typename B::template Buffer<typename B::Act>;
  const int64_t H = cfg.hidden, R = cfg.fc1_rows(), n = batch.rows, G = batch.groups;
  if (batch.total() <= 0) return;
  const bool gated = cfg.gated();
  Buffer dact(G * n * H, "ffn backward"), dup(G * n * H, "ffn backward"), dgate(gated ? G * n * H : 0, "ffn backward");
  // fc2: dact (n, H) = dy (n, d) · W2 (d, H);  dW2 (d, H) += dyᵀ · act
  b.gemm_batched(false, false, n, H, d, 1.f, dy, d, n * d, w.fc2, H, d * H, 0.f, dact.get(), H, n * H, G);
  b.gemm_batched(true, false, d, H, n, 1.f, dy, d, n * d, kept.act, H, n * H, 1.f, w.dfc2, H, d * H, G);
  if (cfg.kind == FfnKind::SwiGLU) {
    b.swiglu_backward(kept.gate, kept.up, dact.get(), dgate.get(), dup.get(), G * n * H);
  } else if (cfg.kind == FfnKind::GeGLU) {
    b.geglu_backward(kept.gate, kept.up, dact.get(), dgate.get(), dup.get(), G * n * H);
  } else {
    b.gelu_backward(kept.up, dact.get(), dup.get(), G * n * H);
  }
  // fc1, per half: dx (n, d) (+)= dh (n, H) · W (H, d);  dW (H, d) += dhᵀ · x
  const typename B::Act* halves[2] = {dup.get(), dgate.get()};
  for (int h = 0; h < (gated ? 2 : 1); ++h) {
    const int64_t off = h * H * d;
    b.gemm_batched(false, false, n, d, H, 1.f, halves[h], H, n * H, w.fc1 + off, d, R * d, h ? 1.f : 0.f, dx, d,
                   n * d, G);
    b.gemm_batched(true, false, H, d, n, 1.f, halves[h], H, n * H, x, d, n * d, 1.f, w.dfc1 + off, d, R * d, G);
  }
}

}  // namespace ml
