// Two launches: the new keys and values go into the caches (one thread per element), then one
// block of kWarps warps per (sequence, head). Lane l holds the query's dims l, l + 32, ... (up
// to 128); warp w takes keys w, w + kWarps, ...: a key's score is a warp sum, folded into the
// warp's online softmax (running max m, sum l, weighted values acc). The warps' partials are
// combined through shared memory in warp order, so the result does not depend on timing.
#include <cmath>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "attention_decode.h"

namespace ml::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 4;  // head_dim ≤ 128

template <typename T>
__global__ void append_kernel(AttentionDecodeDims d, const T* __restrict__ k, const T* __restrict__ v,
                              T* __restrict__ k_cache, T* __restrict__ v_cache, const int32_t* __restrict__ positions) {
  const int64_t row = d.kv_heads * d.head_dim;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d.batch * row) return;
  const int64_t b = i / row, at = (b * d.capacity + positions[b]) * row + i % row;
  k_cache[at] = k[i];
  v_cache[at] = v[i];
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    decode_kernel(AttentionDecodeDims d, const T* __restrict__ q, const T* __restrict__ k_cache,
                  const T* __restrict__ v_cache, const int32_t* __restrict__ positions, T* __restrict__ out) {
  __shared__ float part_m[kWarps], part_l[kWarps], part_acc[kWarps][kMaxPerLane * 32];
  const int64_t i = blockIdx.x, b = i / d.heads, h = i % d.heads, g = h / (d.heads / d.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, dh = int(d.head_dim);
  const float scale = rsqrtf(float(dh));
  float qv[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int dim = lane + 32 * e;
    qv[e] = dim < dh ? to_float(q[i * dh + dim]) * scale : 0.f;
    acc[e] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  const int64_t n = int64_t(positions[b]) + 1;
  for (int64_t j = warp; j < n; j += kWarps) {
    const int64_t at = ((b * d.capacity + j) * d.kv_heads + g) * dh;
    float s = 0.f;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int dim = lane + 32 * e;
      if (dim < dh) s += qv[e] * to_float(k_cache[at + dim]);
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    const float m_new = fmaxf(m, s), rescale = expf(m - m_new), p = expf(s - m_new);
    l = l * rescale + p;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int dim = lane + 32 * e;
      acc[e] = acc[e] * rescale + (dim < dh ? p * to_float(v_cache[at + dim]) : 0.f);
    }
    m = m_new;
  }
  if (lane == 0) part_m[warp] = m, part_l[warp] = l;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) part_acc[warp][lane + 32 * e] = acc[e];
  __syncthreads();
  if (warp != 0) return;
  float top = -INFINITY;
  for (int w = 0; w < kWarps; ++w) top = fmaxf(top, part_m[w]);
  float total = 0.f, o[kMaxPerLane] = {};
  for (int w = 0; w < kWarps; ++w) {
    if (part_l[w] == 0.f) continue;  // a warp that saw no key
    const float weight = expf(part_m[w] - top);
    total += part_l[w] * weight;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) o[e] += part_acc[w][lane + 32 * e] * weight;
  }
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int dim = lane + 32 * e;
    if (dim < dh) out[i * dh + dim] = from_float<T>(o[e] / total);
  }
}

}  // namespace

template <typename T>
void attention_decode(const AttentionDecodeDims& d, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                      const int32_t* positions, T* out, cudaStream_t stream) {
  ML_CHECK(d.head_dim <= kMaxPerLane * 32, "attention_decode (cuda): head_dim must be at most 128, got ", d.head_dim);
  const int64_t n = d.batch * d.kv_heads * d.head_dim;
  if (n <= 0 || d.heads <= 0) return;
  append_kernel<T><<<unsigned((n + 255) / 256), 256, 0, stream>>>(d, k, v, k_cache, v_cache, positions);
  ML_CUDA_CHECK_LAUNCH("attention_decode (append)");
  decode_kernel<T><<<unsigned(d.batch * d.heads), kWarps * 32, 0, stream>>>(d, q, k_cache, v_cache, positions, out);
  ML_CUDA_CHECK_LAUNCH("attention_decode");
}

#define ML_INSTANTIATE(T)                                                                                     \
  template void attention_decode<T>(const AttentionDecodeDims&, const T*, const T*, const T*, T*, T*, \
                                    const int32_t*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
