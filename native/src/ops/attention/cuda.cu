// Flash-style attention. bf16 with head_dim 64 runs on tensor cores: on Hopper's warpgroup
// MMA where the build has it (hopper_forward.cuh, hopper_backward.cuh), else on mma.sync
// (tensor_core.cuh). Every other case runs here on CUDA cores, fp32 arithmetic over fp32 or
// bf16 storage. A block owns a tile of 32 rows (queries in the forward and dq, keys in dk/dv)
// with 8 threads per row; the other side's tiles stream through shared memory, and scores
// exist only tile by tile.
//   forward: an online softmax over key tiles j ≤ the query tile (causal), rescaling the
//            running output; lse = m + log l per query.
//   backward: D_i = ⟨dout_i, out_i⟩ (one warp per query), then two kernels that recompute the
//            probabilities from lse: one per key tile writes dk, dv (looping over the query tiles
//            of every head that shares the key's head), one per query tile writes dq. Each
//            output has one writer: no atomics, deterministic.
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "../../core/compute_capability.h"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/env_switch.h"
#include "../../core/error.h"
#include "attention.h"
#include "hopper_backward.cuh"
#include "hopper_forward.cuh"
#include "tensor_core.cuh"

namespace ml::cuda {
namespace {

constexpr int kTile = 32;
constexpr int kThreads = 256;
constexpr int kLanesPerRow = kThreads / kTile;                // 8 threads share a row
constexpr int kPerLane = kTile / kLanesPerRow;                // scores per thread per tile
constexpr int kMaxHeadDim = 128;
constexpr int kMaxCols = kMaxHeadDim / kLanesPerRow;          // output columns per thread
constexpr int kScoreLd = kTile + 1;                           // padded rows: no bank conflicts

struct Shape {
  int64_t batch, len, heads, kv_heads, dh;
  float scale;
  __host__ __device__ int64_t tiles() const { return (len + kTile - 1) / kTile; }
};

// Rows [first, first + kTile) of a (len, stride) view, zero past len, into dst (rows of ld).
template <typename T>
__device__ void load_tile(float* dst, int ld, const T* src, int64_t stride, int64_t first, int64_t len, int dh) {
  for (int idx = threadIdx.x; idx < kTile * dh; idx += blockDim.x) {
    const int r = idx / dh, c = idx - r * dh;
    dst[r * ld + c] = first + r < len ? to_float(src[(first + r) * stride + c]) : 0.f;
  }
}

// Reductions over the 8 lanes of a row (consecutive lanes of one warp).
__device__ __forceinline__ float row_sum(float v) {
#pragma unroll
  for (int o = kLanesPerRow / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float row_max(float v) {
#pragma unroll
  for (int o = kLanesPerRow / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float dot(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Shape d, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                   T* __restrict__ out, float* __restrict__ lse) {
  extern __shared__ float smem[];
  const int dh = int(d.dh), ld = dh + 1;
  float *Qs = smem, *Ks = Qs + kTile * ld, *Vs = Ks + kTile * ld, *P = Vs + kTile * ld;
  const int64_t qt = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (d.heads / d.kv_heads);
  const int r = threadIdx.x / kLanesPerRow, lane = threadIdx.x % kLanesPerRow;
  const int64_t i = qt * kTile + r, q_stride = d.heads * dh, kv_stride = d.kv_heads * dh;
  const T* qh = q + (b * d.len * d.heads + h) * dh;
  const T* kg = k + (b * d.len * d.kv_heads + g) * dh;
  const T* vg = v + (b * d.len * d.kv_heads + g) * dh;
  load_tile(Qs, ld, qh, q_stride, qt * kTile, d.len, dh);
  float o[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) o[cc] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int64_t kt = 0; kt <= qt; ++kt) {
    __syncthreads();  // the last tile's readers are done
    load_tile(Ks, ld, kg, kv_stride, kt * kTile, d.len, dh);
    load_tile(Vs, ld, vg, kv_stride, kt * kTile, d.len, dh);
    __syncthreads();
    float s[kPerLane], tile_max = -INFINITY;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const int jj = lane + kLanesPerRow * e;
      const int64_t j = kt * kTile + jj;
      s[e] = j <= i && j < d.len ? d.scale * dot(Qs + r * ld, Ks + jj * ld, dh) : -INFINITY;
      tile_max = fmaxf(tile_max, s[e]);
    }
    const float m_new = fmaxf(m, row_max(tile_max));
    const float base = m_new == -INFINITY ? 0.f : m_new;  // rows past len see no score at all
    float sum = 0.f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const float p = expf(s[e] - base);
      P[r * kScoreLd + lane + kLanesPerRow * e] = p;
      sum += p;
    }
    const float alpha = expf(m - base);
    l = l * alpha + row_sum(sum);
    m = m_new;
#pragma unroll
    for (int cc = 0; cc < kMaxCols; ++cc) o[cc] *= alpha;
    __syncthreads();  // P is whole
    for (int jj = 0; jj < kTile; ++jj) {
      const float p = P[r * kScoreLd + jj];
#pragma unroll
      for (int cc = 0; cc < kMaxCols; ++cc) {
        const int c = lane + kLanesPerRow * cc;
        if (c < dh) o[cc] += p * Vs[jj * ld + c];
      }
    }
  }
  if (i >= d.len) return;
  T* oi = out + ((b * d.len + i) * d.heads + h) * dh;
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) {
    const int c = lane + kLanesPerRow * cc;
    if (c < dh) oi[c] = from_float<T>(o[cc] / l);
  }
  if (lane == 0) lse[(b * d.heads + h) * d.len + i] = m + logf(l);
}

// D[b, h, i] = ⟨dout_i, out_i⟩: one warp per (b, i, h) row.
template <typename T>
__global__ void row_dot_kernel(Shape d, const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ D) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // (b · len + i) · heads + h
  if (row >= d.batch * d.len * d.heads) return;
  const int lane = threadIdx.x & 31;
  float s = 0.f;
  for (int64_t c = lane; c < d.dh; c += 32) s += to_float(dout[row * d.dh + c]) * to_float(out[row * d.dh + c]);
  s = warp_sum(s);
  const int64_t h = row % d.heads, bi = row / d.heads, b = bi / d.len, i = bi % d.len;
  if (lane == 0) D[(b * d.heads + h) * d.len + i] = s;
}

// dk, dv of one key tile: every query tile at or after it, of every head of its group.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    dkdv_kernel(Shape d, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                const float* __restrict__ lse, const float* __restrict__ D, const T* __restrict__ dout,
                T* __restrict__ dk, T* __restrict__ dv) {
  extern __shared__ float smem[];
  const int dh = int(d.dh), ld = dh + 1;
  float *Ks = smem, *Vs = Ks + kTile * ld, *Qs = Vs + kTile * ld, *dOs = Qs + kTile * ld;
  float *Pt = dOs + kTile * ld, *dSt = Pt + kTile * kScoreLd, *lse_s = dSt + kTile * kScoreLd, *D_s = lse_s + kTile;
  const int64_t kt = blockIdx.x, g = blockIdx.y, b = blockIdx.z, group = d.heads / d.kv_heads;
  const int r = threadIdx.x / kLanesPerRow, lane = threadIdx.x % kLanesPerRow;
  const int64_t j = kt * kTile + r, q_stride = d.heads * dh, kv_stride = d.kv_heads * dh;
  load_tile(Ks, ld, k + (b * d.len * d.kv_heads + g) * dh, kv_stride, kt * kTile, d.len, dh);
  load_tile(Vs, ld, v + (b * d.len * d.kv_heads + g) * dh, kv_stride, kt * kTile, d.len, dh);
  float dk_acc[kMaxCols], dv_acc[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) dk_acc[cc] = dv_acc[cc] = 0.f;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t head_offset = (b * d.len * d.heads + h) * dh, stats = (b * d.heads + h) * d.len;
    for (int64_t qt = kt; qt < d.tiles(); ++qt) {
      __syncthreads();
      load_tile(Qs, ld, q + head_offset, q_stride, qt * kTile, d.len, dh);
      load_tile(dOs, ld, dout + head_offset, q_stride, qt * kTile, d.len, dh);
      if (threadIdx.x < kTile) {
        const int64_t i = qt * kTile + threadIdx.x;
        lse_s[threadIdx.x] = i < d.len ? lse[stats + i] : 0.f;
        D_s[threadIdx.x] = i < d.len ? D[stats + i] : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int e = 0; e < kPerLane; ++e) {
        const int ii = lane + kLanesPerRow * e;
        const int64_t i = qt * kTile + ii;
        float p = 0.f, ds = 0.f;
        if (j <= i && i < d.len) {
          p = expf(d.scale * dot(Qs + ii * ld, Ks + r * ld, dh) - lse_s[ii]);
          ds = p * (dot(dOs + ii * ld, Vs + r * ld, dh) - D_s[ii]);
        }
        Pt[r * kScoreLd + ii] = p;
        dSt[r * kScoreLd + ii] = ds;
      }
      __syncthreads();
      for (int ii = 0; ii < kTile; ++ii) {
        const float p = Pt[r * kScoreLd + ii], ds = dSt[r * kScoreLd + ii];
#pragma unroll
        for (int cc = 0; cc < kMaxCols; ++cc) {
          const int c = lane + kLanesPerRow * cc;
          if (c < dh) {
            dv_acc[cc] += p * dOs[ii * ld + c];
            dk_acc[cc] += ds * Qs[ii * ld + c];
          }
        }
      }
    }
  }
  if (j >= d.len) return;
  const int64_t row = (b * d.len + j) * d.kv_heads + g;
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) {
    const int c = lane + kLanesPerRow * cc;
    if (c < dh) {
      dk[row * dh + c] = from_float<T>(d.scale * dk_acc[cc]);
      dv[row * dh + c] = from_float<T>(dv_acc[cc]);
    }
  }
}

// dq of one query tile: every key tile at or before it.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    dq_kernel(Shape d, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
              const float* __restrict__ lse, const float* __restrict__ D, const T* __restrict__ dout,
              T* __restrict__ dq) {
  extern __shared__ float smem[];
  const int dh = int(d.dh), ld = dh + 1;
  float *Qs = smem, *dOs = Qs + kTile * ld, *Ks = dOs + kTile * ld, *Vs = Ks + kTile * ld, *dS = Vs + kTile * ld;
  const int64_t qt = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (d.heads / d.kv_heads);
  const int r = threadIdx.x / kLanesPerRow, lane = threadIdx.x % kLanesPerRow;
  const int64_t i = qt * kTile + r, q_stride = d.heads * dh, kv_stride = d.kv_heads * dh;
  const int64_t head_offset = (b * d.len * d.heads + h) * dh, stats = (b * d.heads + h) * d.len;
  load_tile(Qs, ld, q + head_offset, q_stride, qt * kTile, d.len, dh);
  load_tile(dOs, ld, dout + head_offset, q_stride, qt * kTile, d.len, dh);
  const float lse_i = i < d.len ? lse[stats + i] : 0.f, D_i = i < d.len ? D[stats + i] : 0.f;
  float dq_acc[kMaxCols];
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) dq_acc[cc] = 0.f;
  for (int64_t kt = 0; kt <= qt; ++kt) {
    __syncthreads();
    load_tile(Ks, ld, k + (b * d.len * d.kv_heads + g) * dh, kv_stride, kt * kTile, d.len, dh);
    load_tile(Vs, ld, v + (b * d.len * d.kv_heads + g) * dh, kv_stride, kt * kTile, d.len, dh);
    __syncthreads();
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const int jj = lane + kLanesPerRow * e;
      const int64_t j = kt * kTile + jj;
      float ds = 0.f;
      if (j <= i && i < d.len) {
        const float p = expf(d.scale * dot(Qs + r * ld, Ks + jj * ld, dh) - lse_i);
        ds = p * (dot(dOs + r * ld, Vs + jj * ld, dh) - D_i);
      }
      dS[r * kScoreLd + jj] = ds;
    }
    __syncthreads();
    for (int jj = 0; jj < kTile; ++jj) {
      const float ds = dS[r * kScoreLd + jj];
#pragma unroll
      for (int cc = 0; cc < kMaxCols; ++cc) {
        const int c = lane + kLanesPerRow * cc;
        if (c < dh) dq_acc[cc] += ds * Ks[jj * ld + c];
      }
    }
  }
  if (i >= d.len) return;
  T* dqi = dq + ((b * d.len + i) * d.heads + h) * dh;
#pragma unroll
  for (int cc = 0; cc < kMaxCols; ++cc) {
    const int c = lane + kLanesPerRow * cc;
    if (c < dh) dqi[c] = from_float<T>(d.scale * dq_acc[cc]);
  }
}

Shape shape_of(const AttentionDims& a, const char* op) {
  ML_CHECK(a.heads > 0 && a.kv_heads > 0 && a.heads % a.kv_heads == 0, op, ": kv_heads (", a.kv_heads,
           ") must divide heads (", a.heads, ")");
  ML_CHECK(a.head_dim >= 1 && a.head_dim <= kMaxHeadDim, op, " (cuda): head_dim must be in [1, ", kMaxHeadDim,
           "], got ", a.head_dim);
  ML_CHECK(a.heads <= 65535 && a.batch <= 65535, op, " (cuda): at most 65535 heads and sequences, got ", a.heads,
           " and ", a.batch);
  return {a.batch, a.len, a.heads, a.kv_heads, a.head_dim, float(1.0 / std::sqrt(double(a.head_dim)))};
}

// Kernels asking for more than the default 48 KiB of shared memory must say so once.
template <typename Kernel>
void allow_shared(Kernel kernel, size_t bytes, const char* op) {
  if (bytes > 48 * 1024)
    ML_CUDA_CHECK(op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

size_t floats(int64_t n) { return size_t(n) * sizeof(float); }

// bf16 with the head size the tensor-core kernels are written for.
template <typename T>
bool on_tensor_cores(const Shape& d) {
  return std::is_same_v<T, bf16> && d.dh == tensor_core::kDim;
}

tensor_core::Args tensor_core_args(const Shape& d) {
  tensor_core::Args a{};
  a.batch = d.batch, a.len = d.len, a.heads = d.heads, a.kv_heads = d.kv_heads, a.scale = d.scale;
  return a;
}

// A tensor-core kernel on blocks of rows_per_block rows × heads × sequences, with its shared
// memory (asked for where over the default).
void launch_tensor_core(void (*kernel)(tensor_core::Args), const Shape& d, int64_t heads, int rows_per_block,
                        int threads, size_t shared, cudaStream_t stream, const tensor_core::Args& a, const char* what) {
  allow_shared(kernel, shared, what);
  const dim3 grid(unsigned((d.len + rows_per_block - 1) / rows_per_block), unsigned(heads), unsigned(d.batch));
  kernel<<<grid, threads, shared, stream>>>(a);
  ML_CUDA_CHECK_LAUNCH(what);
}

// The warpgroup-MMA kernels are compiled for sm_90a only (MAMBALAB_HOPPER_KERNELS: the build's
// architectures include 90a) and run on compute capability 9.0. MAMBALAB_WGMMA_ATTENTION=0
// takes the mma.sync kernels instead (read at every call, so a test can switch it).
bool on_hopper() {
#ifdef MAMBALAB_HOPPER_KERNELS
  return !switched_off("MAMBALAB_WGMMA_ATTENTION") && current_compute_capability() == 90;
#else
  return false;
#endif
}

}  // namespace

template <typename T>
void attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, float* lse,
                       cudaStream_t stream) {
  const Shape d = shape_of(dims, "attention_forward");
  if (d.batch * d.len == 0) return;
  if constexpr (std::is_same_v<T, bf16>) {
    if (on_tensor_cores<T>(d)) {
      tensor_core::Args a = tensor_core_args(d);
      a.q = q, a.k = k, a.v = v, a.out_w = out, a.lse_w = lse;
      if (on_hopper())
        return launch_tensor_core(tensor_core::hopper_forward_kernel, d, d.heads, tensor_core::hopper::kBlockRows,
                                  tensor_core::hopper::kThreads, tensor_core::hopper::kForwardShared, stream, a,
                                  "attention_forward (warpgroup MMA)");
      return launch_tensor_core(tensor_core::forward_kernel, d, d.heads, tensor_core::kRows, tensor_core::kThreads,
                                tensor_core::kForwardShared, stream, a, "attention_forward (tensor cores)");
    }
  }
  const int64_t ld = d.dh + 1;
  const size_t shared = floats(3 * kTile * ld + kTile * kScoreLd);
  allow_shared(forward_kernel<T>, shared, "attention_forward");
  forward_kernel<T><<<dim3(unsigned(d.tiles()), unsigned(d.heads), unsigned(d.batch)), kThreads, shared, stream>>>(
      d, q, k, v, out, lse);
  ML_CUDA_CHECK_LAUNCH("attention_forward");
}

template <typename T>
void attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out, const float* lse,
                        const T* dout, T* dq, T* dk, T* dv, cudaStream_t stream) {
  const Shape d = shape_of(dims, "attention_backward");
  if (d.batch * d.len == 0) return;
  const int64_t ld = d.dh + 1, rows = d.batch * d.len * d.heads;
  DeviceBuffer<float> D(rows, "attention backward");
  row_dot_kernel<T><<<unsigned((rows + 7) / 8), 256, 0, stream>>>(d, dout, out, D.get());
  ML_CUDA_CHECK_LAUNCH("attention_backward (D)");
  if constexpr (std::is_same_v<T, bf16>) {
    if (on_tensor_cores<T>(d)) {
      tensor_core::Args a = tensor_core_args(d);
      a.q = q, a.k = k, a.v = v, a.out = out, a.dout = dout, a.lse = lse, a.D = D.get();
      a.dq = dq, a.dk = dk, a.dv = dv;
      if (on_hopper()) {
        launch_tensor_core(tensor_core::hopper_dkdv_kernel, d, d.kv_heads, tensor_core::hopper::kDkdvKeys,
                           tensor_core::hopper::kDkdvThreads, tensor_core::hopper::kDkdvShared, stream, a,
                           "attention_backward (dk, dv; warpgroup MMA)");
        return launch_tensor_core(tensor_core::hopper_dq_kernel, d, d.heads, tensor_core::hopper::kBlockRows,
                                  tensor_core::hopper::kThreads, tensor_core::hopper::kDqShared, stream, a,
                                  "attention_backward (dq; warpgroup MMA)");
      }
      launch_tensor_core(tensor_core::dkdv_kernel, d, d.kv_heads, tensor_core::kRows, tensor_core::kThreads,
                         tensor_core::kDkdvShared, stream, a, "attention_backward (dk, dv; tensor cores)");
      return launch_tensor_core(tensor_core::dq_kernel, d, d.heads, tensor_core::kRows, tensor_core::kThreads,
                                tensor_core::kDqShared, stream, a, "attention_backward (dq; tensor cores)");
    }
  }
  const size_t dkdv_shared = floats(4 * kTile * ld + 2 * kTile * kScoreLd + 2 * kTile);
  allow_shared(dkdv_kernel<T>, dkdv_shared, "attention_backward");
  dkdv_kernel<T><<<dim3(unsigned(d.tiles()), unsigned(d.kv_heads), unsigned(d.batch)), kThreads, dkdv_shared,
                   stream>>>(d, q, k, v, lse, D.get(), dout, dk, dv);
  ML_CUDA_CHECK_LAUNCH("attention_backward (dk, dv)");
  const size_t dq_shared = floats(4 * kTile * ld + kTile * kScoreLd);
  allow_shared(dq_kernel<T>, dq_shared, "attention_backward");
  dq_kernel<T><<<dim3(unsigned(d.tiles()), unsigned(d.heads), unsigned(d.batch)), kThreads, dq_shared, stream>>>(
      d, q, k, v, lse, D.get(), dout, dq);
  ML_CUDA_CHECK_LAUNCH("attention_backward (dq)");
}

#define ML_INSTANTIATE(T)                                                                                          \
  template void attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, T*, float*,               \
                                     cudaStream_t);                                                               \
  template void attention_backward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, const float*, \
                                      const T*, T*, T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
