// The feed-forward block of dense MLP layers and of experts, on rows of d_model:
//   gelu:   y = fc2(gelu(fc1(x)))                       fc1 (hidden, d), fc2 (d, hidden)
//   swiglu: up, gate = fc1(x) split in halves; y = fc2(up · silu(gate))
//                                                       fc1 (2·hidden, d) [up; gate], as mamba_ssm's GatedMLP
// No biases. Weights are raw pointers so experts can live in one stacked tensor.
#pragma once
#include <cstdint>

#include "../core/tensor.h"

namespace ml {

enum class FfnKind { Gelu, SwiGLU };

struct FfnConfig {
  FfnKind kind = FfnKind::Gelu;
  int64_t hidden = 0;
  int64_t fc1_rows() const { return kind == FfnKind::SwiGLU ? 2 * hidden : hidden; }
};

template <typename T>
struct FfnWeights {
  const T *fc1, *fc2;
  T *dfc1, *dfc2;  // gradients, accumulated
};

// Activations of one forward, kept for the backward.
template <typename T>
struct FfnCache {
  Tensor<T> x, h, a;  // input (rows, d); fc1 output (rows, fc1_rows); activation (rows, hidden)
};

template <typename T>
void ffn_forward(const FfnConfig& cfg, int64_t d, const FfnWeights<T>& w, const T* x, int64_t rows, T* y,
                 FfnCache<T>& cache);

// dx is overwritten.
template <typename T>
void ffn_backward(const FfnConfig& cfg, int64_t d, const FfnWeights<T>& w, const FfnCache<T>& cache, const T* dy,
                  T* dx);

}  // namespace ml
