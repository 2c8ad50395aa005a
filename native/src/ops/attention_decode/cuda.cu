// A decode step reads every cached key and value of every head once, so its time is set by how
// many of those reads are in flight. One block per (sequence, head) walking the cache left most
// of the GPU idle and each warp waiting on one key at a time (8.6 ms per token at 2,048 tokens
// for an 18-layer Transformer on an H200), so the cache is split (flash-decoding):
//   1. append: the new keys and values go into the caches (one thread per element);
//   2. one block of kWarps warps per (sequence, head, span of the cache): lane l holds the
//      query's dims l, l + 32, ... (up to 128); each warp takes kUnroll keys at a time (their
//      loads and warp sums interleaved), folded into its online softmax (running max m, sum l,
//      weighted values acc); the warps combine in warp order through shared memory, and the
//      block writes its span's (m, l, acc), or the output itself when the cache is one span;
//   3. one warp per (sequence, head) combines the spans in span order.
// Spans past a sequence's position see no key and leave l = 0. The span count follows the
// capacity, not the positions (which live on the device), so a captured step replays as is.
// Every combination runs in a fixed order: the result does not depend on timing.
#include <algorithm>
#include <cmath>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "attention_decode.h"

namespace ml::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kUnroll = 4;        // keys a warp has in flight
constexpr int kMaxPerLane = 4;    // head_dim ≤ 128
constexpr int64_t kSpanKeys = 128;  // cache rows per block, before the cap on spans
constexpr int64_t kMaxSpans = 64;

struct Spans {
  int64_t count, keys;  // spans per (sequence, head), cache rows per span
};

Spans spans_of(const AttentionDecodeDims& d) {
  const int64_t count = std::max<int64_t>(1, std::min(kMaxSpans, (d.capacity + kSpanKeys - 1) / kSpanKeys));
  return {count, (d.capacity + count - 1) / count};
}

// A span's partial result in the scratch: m, l, then head_dim weighted sums.
template <typename F>
__device__ __forceinline__ F* partial_at(F* scratch, int64_t bh, int64_t span, int64_t spans, int dh) {
  return scratch + (bh * spans + span) * (dh + 2);
}

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
    span_kernel(AttentionDecodeDims d, Spans spans, const T* __restrict__ q, const T* __restrict__ k_cache,
                const T* __restrict__ v_cache, const int32_t* __restrict__ positions, T* __restrict__ out,
                float* __restrict__ scratch) {
  __shared__ float part_m[kWarps], part_l[kWarps], part_acc[kWarps][kMaxPerLane * 32];
  const int64_t i = blockIdx.x, b = i / d.heads, h = i % d.heads, g = h / (d.heads / d.kv_heads);
  const int64_t span = blockIdx.y;
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
  const int64_t n = int64_t(positions[b]) + 1, first = span * spans.keys;
  const int64_t last = n < first + spans.keys ? n : first + spans.keys;
  const int64_t row_stride = d.kv_heads * dh;
  const int64_t base = (b * d.capacity * d.kv_heads + g) * dh;
  for (int64_t j0 = first + int64_t(warp) * kUnroll; j0 < last; j0 += int64_t(kWarps) * kUnroll) {
    float s[kUnroll], vv[kUnroll][kMaxPerLane];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // every load of the kUnroll keys before any sum
      const bool valid = j0 + u < last;
      const int64_t at = base + (j0 + u) * row_stride;
      s[u] = 0.f;
#pragma unroll
      for (int e = 0; e < kMaxPerLane; ++e) {
        const int dim = lane + 32 * e;
        const bool here = valid && dim < dh;
        s[u] += here ? qv[e] * to_float(k_cache[at + dim]) : 0.f;
        vv[u][e] = here ? to_float(v_cache[at + dim]) : 0.f;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], offset);
    }
    float m_new = m;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (j0 + u < last) m_new = fmaxf(m_new, s[u]);
    const float rescale = expf(m - m_new);  // m_new is finite: key j0 is valid
    float p[kUnroll];
    l *= rescale;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      p[u] = j0 + u < last ? expf(s[u] - m_new) : 0.f;
      l += p[u];
    }
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      float a = acc[e] * rescale;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) a = fmaf(p[u], vv[u][e], a);
      acc[e] = a;
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
  if (spans.count == 1) {
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int dim = lane + 32 * e;
      if (dim < dh) out[i * dh + dim] = from_float<T>(o[e] / total);
    }
    return;
  }
  float* part = partial_at(scratch, i, span, spans.count, dh);
  if (lane == 0) part[0] = top, part[1] = total;  // total 0: the span saw no key
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int dim = lane + 32 * e;
    if (dim < dh) part[2 + dim] = o[e];
  }
}

template <typename T>
__global__ void combine_kernel(AttentionDecodeDims d, Spans spans, const float* __restrict__ scratch,
                               T* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (i >= d.batch * d.heads) return;  // whole warps only
  const int lane = threadIdx.x % 32, dh = int(d.head_dim);
  float top = -INFINITY;
  for (int64_t s = 0; s < spans.count; ++s) {
    const float* part = partial_at(scratch, i, s, spans.count, dh);
    if (part[1] > 0.f) top = fmaxf(top, part[0]);
  }
  float total = 0.f, o[kMaxPerLane] = {};
  for (int64_t s = 0; s < spans.count; ++s) {
    const float* part = partial_at(scratch, i, s, spans.count, dh);
    if (part[1] == 0.f) continue;
    const float weight = expf(part[0] - top);
    total += part[1] * weight;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int dim = lane + 32 * e;
      if (dim < dh) o[e] += part[2 + dim] * weight;
    }
  }
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int dim = lane + 32 * e;
    if (dim < dh) out[i * dh + dim] = from_float<T>(o[e] / total);
  }
}

}  // namespace

int64_t attention_decode_scratch(const AttentionDecodeDims& d) {
  const Spans spans = spans_of(d);
  return spans.count == 1 ? 0 : d.batch * d.heads * spans.count * (d.head_dim + 2);
}

template <typename T>
void attention_decode(const AttentionDecodeDims& d, const T* q, const T* k, const T* v, T* k_cache, T* v_cache,
                      const int32_t* positions, T* out, float* scratch, cudaStream_t stream) {
  ML_CHECK(d.head_dim <= kMaxPerLane * 32, "attention_decode (cuda): head_dim must be at most 128, got ", d.head_dim);
  const int64_t n = d.batch * d.kv_heads * d.head_dim;
  if (n <= 0 || d.heads <= 0) return;
  const Spans spans = spans_of(d);
  ML_CHECK(spans.count == 1 || scratch != nullptr, "attention_decode (cuda): a cache of ", d.capacity,
           " rows needs the scratch of attention_decode_scratch()");
  append_kernel<T><<<unsigned((n + 255) / 256), 256, 0, stream>>>(d, k, v, k_cache, v_cache, positions);
  ML_CUDA_CHECK_LAUNCH("attention_decode (append)");
  span_kernel<T><<<dim3(unsigned(d.batch * d.heads), unsigned(spans.count)), kWarps * 32, 0, stream>>>(
      d, spans, q, k_cache, v_cache, positions, out, scratch);
  ML_CUDA_CHECK_LAUNCH("attention_decode");
  if (spans.count > 1) {
    combine_kernel<T><<<unsigned((d.batch * d.heads + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(d, spans, scratch,
                                                                                                       out);
    ML_CUDA_CHECK_LAUNCH("attention_decode (combine)");
  }
}

#define ML_INSTANTIATE(T)                                                                                     \
  template void attention_decode<T>(const AttentionDecodeDims&, const T*, const T*, const T*, T*, T*, \
                                    const int32_t*, T*, float*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
