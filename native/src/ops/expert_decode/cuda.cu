// Two launches of one warp per output value: fc1's rows for every assignment (both halves of a
// gated row in the same warp, so the activation needs no second pass), then fc2's rows for
// every token, summing its assignments in choice order (core/vector_io.cuh's warp_dots).
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "../../core/vector_io.cuh"
#include "expert_decode.h"

namespace ml::cuda {
namespace {

constexpr int kWarps = 8;

// ⟨w, v⟩ over n elements, every lane of the warp gets it.
template <typename T>
__device__ __forceinline__ float warp_dot(const T* __restrict__ w, const T* __restrict__ v, int64_t n) {
  float dot[1];
  warp_dots<1>(w, v, 0, 1, n, dot);
  return dot[0];
}

// The value as the slot layout stores it.
template <typename T>
__device__ __forceinline__ float stored(float v) {
  return to_float(from_float<T>(v));
}

template <typename T>
__global__ void expert_hidden_kernel(ExpertDecodeDims d, const T* __restrict__ x, const int32_t* __restrict__ expert,
                                     const T* __restrict__ fc1, T* __restrict__ hidden) {
  chain_wait();
  const int64_t a = blockIdx.y, i = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (i >= d.hidden) return;  // uniform over the warp
  const T* w = fc1 + int64_t(expert[a]) * d.fc1_rows() * d.d;
  const T* xt = x + (a % d.tokens) * d.d;
  const float up = stored<T>(warp_dot(w + i * d.d, xt, d.d));
  float value;
  if (d.activation == ExpertActivation::Gelu) {
    value = gelu32(up);
  } else {
    const float gate = stored<T>(warp_dot(w + (d.hidden + i) * d.d, xt, d.d));
    value = (d.activation == ExpertActivation::SwiGLU ? silu32(gate) : gelu32(gate)) * up;
  }
  if ((threadIdx.x & 31) == 0) hidden[a * d.hidden + i] = from_float<T>(value);
}

template <typename T>
__global__ void expert_output_kernel(ExpertDecodeDims d, const int32_t* __restrict__ expert, const T* __restrict__ gate,
                                     const T* __restrict__ fc2, const T* __restrict__ hidden, T* __restrict__ y) {
  chain_wait();
  const int64_t t = blockIdx.y, j = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (j >= d.d) return;
  float sum = 0.f;
  for (int64_t c = 0; c < d.top_k; ++c) {
    const int64_t a = c * d.tokens + t;
    const float out = stored<T>(warp_dot(fc2 + (int64_t(expert[a]) * d.d + j) * d.hidden, hidden + a * d.hidden, d.hidden));
    sum += out * to_float(gate[a]);
  }
  if ((threadIdx.x & 31) == 0) y[t * d.d + j] = from_float<T>(sum);
}

}  // namespace

template <typename T>
void expert_decode(const ExpertDecodeDims& d, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                   const T* fc2, T* hidden, T* y, cudaStream_t stream) {
  if (d.tokens <= 0 || d.d <= 0) return;
  const int64_t assignments = d.top_k * d.tokens;
  ML_CHECK(assignments <= 65535, "expert_decode (cuda): ", assignments,
           " assignments exceed one launch (it is meant for decode steps)");
  if (d.hidden > 0) {
    launch_chained("expert_decode (fc1)", expert_hidden_kernel<T>,
                   dim3(unsigned((d.hidden + kWarps - 1) / kWarps), unsigned(assignments)), dim3(32 * kWarps), 0, stream,
                   d, x, expert, fc1, hidden);
  }
  launch_chained("expert_decode (fc2)", expert_output_kernel<T>,
                 dim3(unsigned((d.d + kWarps - 1) / kWarps), unsigned(d.tokens)), dim3(32 * kWarps), 0, stream, d, expert,
                 gate, fc2, hidden, y);
}

#define ML_INSTANTIATE(T)                                                                                          \
  template void expert_decode<T>(const ExpertDecodeDims&, const T*, const int32_t*, const T*, const T*, const T*, \
                                 T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
