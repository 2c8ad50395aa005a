// Elementwise maps for the activation ops (silu, gelu, swiglu, casts): y[i] = f(x₀[i], x₁[i], …)
// with T storage (float or bf16) and fp32 math, one grid-stride loop over runs of kMapRun
// consecutive elements, so that each access is up to 16 bytes (core/vector_io.cuh; element by
// element at a ragged end): one 2-byte access per element left these kernels at a fraction of
// the memory bandwidth. `f` is a functor whose operator() is __device__ and takes and returns
// floats. Included by .cu files only.
#pragma once
#include <utility>

#include "cuda_check.h"
#include "cuda_math.cuh"
#include "vector_io.cuh"

namespace ml::cuda {

constexpr int kMapRun = 8;

// v[0, kMapRun) ← p[0, valid) as floats (0 past valid).
template <typename In>
__device__ __forceinline__ void load_floats_run(const In* __restrict__ p, int valid, float (&v)[kMapRun]) {
  Run<In, kMapRun> r;
  load_run(r, p, valid);
#pragma unroll
  for (int e = 0; e < kMapRun; ++e) v[e] = r.at(e);
}

template <typename F, size_t... I>
__device__ __forceinline__ float map_at(F f, const float (&v)[sizeof...(I)][kMapRun], int e,
                                        std::index_sequence<I...>) {
  return f(v[I][e]...);
}

template <typename T, typename F, typename... In>
__global__ void map_kernel(F f, T* __restrict__ y, int64_t n, const In* __restrict__... in) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x * kMapRun;
  for (int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kMapRun; i < n; i += stride) {
    const int valid = n - i < kMapRun ? int(n - i) : kMapRun;
    float v[sizeof...(In)][kMapRun], out[kMapRun];
    int k = 0;
    (load_floats_run(in + i, valid, v[k++]), ...);
#pragma unroll
    for (int e = 0; e < kMapRun; ++e) out[e] = map_at(f, v, e, std::index_sequence_for<In...>{});
    store_run(y + i, out, valid);
  }
}

// Blocks for a map over n elements in runs of kMapRun.
inline unsigned map_blocks(int64_t n, int threads) { return blocks_for((n + kMapRun - 1) / kMapRun, threads); }

// Enqueues the map on `stream`; `op` names the caller in errors.
template <typename T, typename F, typename... In>
void map(const char* op, F f, T* y, int64_t n, cudaStream_t stream, const In*... in) {
  if (n <= 0) return;
  map_kernel<T, F, In...><<<map_blocks(n, 256), 256, 0, stream>>>(f, y, n, in...);
  ML_CUDA_CHECK_LAUNCH(op);
}

// The backward of y = act(gate) · up, both gradients: dgate = dy · up · act′(gate) and
// dup = dy · act(gate), in runs as map_kernel. Act has __device__ value(float) and grad(float).
template <typename T, typename Act>
__global__ void gated_backward_kernel(Act act, const T* __restrict__ gate, const T* __restrict__ up,
                                      const T* __restrict__ dy, T* __restrict__ dgate, T* __restrict__ dup,
                                      int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x * kMapRun;
  for (int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kMapRun; i < n; i += stride) {
    const int valid = n - i < kMapRun ? int(n - i) : kMapRun;
    float g[kMapRun], u[kMapRun], d[kMapRun], dg[kMapRun], du[kMapRun];
    load_floats_run(gate + i, valid, g);
    load_floats_run(up + i, valid, u);
    load_floats_run(dy + i, valid, d);
#pragma unroll
    for (int e = 0; e < kMapRun; ++e) {
      dg[e] = d[e] * u[e] * act.grad(g[e]);
      du[e] = d[e] * act.value(g[e]);
    }
    store_run(dgate + i, dg, valid);
    store_run(dup + i, du, valid);
  }
}

template <typename T, typename Act>
void gated_backward(const char* op, Act act, const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n,
                    cudaStream_t stream) {
  if (n <= 0) return;
  gated_backward_kernel<T, Act><<<map_blocks(n, 256), 256, 0, stream>>>(act, gate, up, dy, dgate, dup, n);
  ML_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ml::cuda
