// The feed-forward block (../ffn.h) on the GPU, for the dense MLP and for the experts of a
// mixture of experts: `groups` independent blocks of `rows` rows each, group g reading rows
// [g·rows, (g+1)·rows) of x and its own weights (fc1 + g·fc1_rows·d, fc2 + g·d·hidden), as
// strided-batched GEMMs. Rows of zeros stay zeros through the block and add nothing to the
// weight gradients (when their dy is zero too), so experts can be padded to a common size.
// SwiGLU's fc1 halves (up, then gate) are two products into two arrays, so the elementwise
// ops see contiguous inputs.
#pragma once
#include <cstdint>

#include "../../core/cuda_fwd.h"
#include "../../core/device_allocator.h"
#include "../ffn.h"

namespace ml::cuda {

template <typename T>
struct DeviceFfnWeights {
  const T *fc1, *fc2;  // compute copies: (groups, fc1_rows, d), (groups, d, hidden)
  float *dfc1, *dfc2;  // fp32 gradients, accumulated

  // The weights of group g of a stacked tensor (an expert).
  DeviceFfnWeights group(int64_t g, const FfnConfig& cfg, int64_t d) const {
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
template <typename T>
struct FfnActivations {
  T *up, *gate, *act;

  FfnActivations from_row(int64_t row, int64_t hidden) const {
    return {up + row * hidden, gate ? gate + row * hidden : nullptr, act + row * hidden};
  }
};

// Owns FfnActivations for up to `rows` rows.
template <typename T>
class FfnBuffers {
 public:
  // Reallocates only when the size changes.
  FfnActivations<T> reserve(const FfnConfig& cfg, int64_t rows);

 private:
  DeviceBuffer<T> up_, gate_, act_;
};

// y (batch.total(), d) is overwritten; `keep` is filled for the backward.
template <typename T>
void ffn_forward(const FfnConfig& cfg, int64_t d, const DeviceFfnWeights<T>& w, FfnBatch batch, const T* x, T* y,
                 const FfnActivations<T>& keep, cudaStream_t stream);

// x is the forward's input; dx is overwritten; the weight gradients accumulate.
template <typename T>
void ffn_backward(const FfnConfig& cfg, int64_t d, const DeviceFfnWeights<T>& w, FfnBatch batch, const T* x,
                  const FfnActivations<T>& kept, const T* dy, T* dx, cudaStream_t stream);

}  // namespace ml::cuda
