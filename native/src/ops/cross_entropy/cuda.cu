// Per vocabulary chunk: one cuBLASLt product makes the chunk's fp32 logits, then a warp (short
// chunks) or a block (long ones) per row folds them, in one pass, into a running (max, sum of
// exp) — the online softmax — and picks the target's logit when it falls in the chunk. The
// backward remakes each chunk's logits, turns them into (softmax − onehot)·scale in T, and adds
// its two products into dh and dE. Both per-chunk kernels read each logit once, 16 bytes at a
// time where rows are 16-byte aligned, so that memory bandwidth bounds them. Training takes
// both at once (cross_entropy_forward_backward): chunks of rows over the whole vocabulary, each
// row's softmax final within its chunk, so the logits are made once.
#include <algorithm>
#include <cmath>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../gemm/gemm.h"
#include "cross_entropy.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;

int64_t chunk_columns(const HeadDims& d) {
  if (d.chunk > 0) return std::min(d.chunk, d.vocab);
  const int64_t cols = std::clamp<int64_t>((int64_t{1} << 25) / std::max<int64_t>(d.rows, 1), 256, d.vocab);
  return cols < d.vocab ? std::max<int64_t>(8, cols / 8 * 8) : cols;  // keeps chunk starts 16-byte aligned
}

__global__ void online_softmax_init_kernel(float* running_max, float* running_sum, float* target_logit, int64_t rows) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    running_max[r] = -INFINITY;
    running_sum[r] = 0.f;
    target_logit[r] = 0.f;
  }
}

// Threads per row: a warp while chunks are short (the default chunking makes short chunks only
// for many rows, which then fill the GPU), a whole block for long chunks of few rows.
constexpr int64_t kWarpPerRowMaxCols = 4096;
constexpr int kRun = 4;  // logits per vector access (16 bytes)

// Rows split among groups of kRowThreads threads (32 or kThreads): the group's row, and the
// thread's place in it. Only warp groups can lie past the last row, so those may leave early
// (a block group has a row and keeps every thread for its __syncthreads).
template <int kRowThreads>
struct RowGroup {
  static constexpr int kRowsPerBlock = kThreads / kRowThreads;
  int64_t row;
  int lane;

  __device__ RowGroup()
      : row(int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kRowThreads), lane(threadIdx.x % kRowThreads) {}

  static unsigned blocks(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }
};

// A row's logits in runs of kRun through 16-byte loads, only when every run is 16-byte aligned.
bool vector_rows(const float* logits, int64_t cols) { return cols % kRun == 0 && aligned16(logits); }

// Running max m and s = Σ exp(x − m) over some logits; empty: (−inf, 0).
struct MaxSum {
  float max, sum;
};

__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return a;  // both empty: exp(−inf − (−inf)) would be NaN
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

// Folds kRun logits (−inf past the row's end) into acc: one rescale per run, not per logit.
__device__ __forceinline__ void fold_run(MaxSum& acc, const float (&x)[kRun]) {
  float m = acc.max;
#pragma unroll
  for (int k = 0; k < kRun; ++k) m = fmaxf(m, x[k]);
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < kRun; ++k) s += expf(x[k] - m);
  acc = {m, acc.sum * expf(acc.max - m) + s};
}

// Butterfly over the warp: a fixed order, so every run gives the same bits.
__device__ __forceinline__ MaxSum warp_combine(MaxSum v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1)
    v = combine(v, {__shfl_xor_sync(0xffffffffu, v.max, m), __shfl_xor_sync(0xffffffffu, v.sum, m)});
  return v;
}

template <int kRowThreads>
__global__ void __launch_bounds__(kThreads)
    online_softmax_update_kernel(const float* __restrict__ logits, int64_t rows, int64_t cols, int64_t v0,
                                 bool vectorised, const int32_t* __restrict__ targets, float* __restrict__ running_max,
                                 float* __restrict__ running_sum, float* __restrict__ target_logit) {
  const RowGroup<kRowThreads> group;
  if (group.row >= rows) return;
  const float* row = logits + group.row * cols;
  MaxSum acc{-INFINITY, 0.f};
  if (vectorised) {
    const float4* runs = reinterpret_cast<const float4*>(row);
#pragma unroll 4
    for (int64_t q = group.lane; q < cols / kRun; q += kRowThreads) {
      const float4 v = __ldg(runs + q);
      fold_run(acc, {v.x, v.y, v.z, v.w});
    }
  } else {  // a thread's run: kRun logits kRowThreads apart, so each load stays coalesced
#pragma unroll 2
    for (int64_t c = group.lane; c < cols; c += int64_t(kRowThreads) * kRun) {
      float x[kRun];
#pragma unroll
      for (int k = 0; k < kRun; ++k) x[k] = c + k * kRowThreads < cols ? row[c + k * kRowThreads] : -INFINITY;
      fold_run(acc, x);
    }
  }
  MaxSum chunk = warp_combine(acc);
  if constexpr (kRowThreads > 32) {  // then across the block's warps, in order
    __shared__ MaxSum warp_partial[kRowThreads / 32];
    if (group.lane % 32 == 0) warp_partial[group.lane / 32] = chunk;
    __syncthreads();
    if (group.lane == 0)
      for (int w = 1; w < kRowThreads / 32; ++w) chunk = combine(chunk, warp_partial[w]);
  }
  if (group.lane != 0) return;
  const int64_t r = group.row;
  const MaxSum total = combine({running_max[r], running_sum[r]}, chunk);
  running_max[r] = total.max;
  running_sum[r] = total.sum;
  const int64_t t = int64_t(targets[r]) - v0;
  if (t >= 0 && t < cols) target_logit[r] = row[t];
}

void online_softmax_update(const float* logits, int64_t rows, int64_t cols, int64_t v0, const int32_t* targets,
                           float* running_max, float* running_sum, float* target_logit, cudaStream_t stream) {
  const bool vectorised = vector_rows(logits, cols);
  if (cols <= kWarpPerRowMaxCols)
    online_softmax_update_kernel<32><<<RowGroup<32>::blocks(rows), kThreads, 0, stream>>>(
        logits, rows, cols, v0, vectorised, targets, running_max, running_sum, target_logit);
  else
    online_softmax_update_kernel<kThreads><<<RowGroup<kThreads>::blocks(rows), kThreads, 0, stream>>>(
        logits, rows, cols, v0, vectorised, targets, running_max, running_sum, target_logit);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

// lse of rows whose running (max, sum) is final.
__global__ void lse_kernel(const float* __restrict__ running_max, const float* __restrict__ running_sum,
                           float* __restrict__ lse, int64_t rows) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x)
    lse[r] = running_max[r] + logf(running_sum[r]);
}

// One block: lse per row, and the mean loss summed in fp64 in a fixed order.
__global__ void finish_kernel(const float* __restrict__ running_max, const float* __restrict__ running_sum,
                              const float* __restrict__ target_logit, float* __restrict__ lse,
                              float* __restrict__ loss, int64_t rows) {
  __shared__ double scratch[32];
  double total = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const float l = running_max[r] + logf(running_sum[r]);
    lse[r] = l;
    total += double(l) - double(target_logit[r]);
  }
  total = block_sum(total, scratch);
  if (threadIdx.x == 0) loss[0] = float(total / double(rows));
}

// Stores a run at an address aligned to the run's size (16 bytes fp32, 8 bytes bf16), with no
// alignment test that would keep the next iteration's load from being issued early.
__device__ __forceinline__ void store_aligned_run(float* out, const float (&g)[kRun]) {
  *reinterpret_cast<float4*>(out) = make_float4(g[0], g[1], g[2], g[3]);
}
__device__ __forceinline__ void store_aligned_run(bf16* out, const float (&g)[kRun]) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(g[0], g[1]), hi = __floats2bfloat162_rn(g[2], g[3]);
  *reinterpret_cast<uint2*>(out) =
      make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}

template <typename T, int kRowThreads>
__global__ void __launch_bounds__(kThreads)
    softmax_grad_kernel(const float* __restrict__ logits, const float* __restrict__ lse,
                        const int32_t* __restrict__ targets, T* __restrict__ p, int64_t rows, int64_t cols,
                        int64_t v0, bool vectorised, float scale) {
  const RowGroup<kRowThreads> group;
  if (group.row >= rows) return;
  const float* row = logits + group.row * cols;
  T* out = p + group.row * cols;
  const float l = lse[group.row];
  const int64_t t = int64_t(targets[group.row]) - v0;  // outside [0, cols) when not in this chunk
  if (vectorised) {
    const float4* runs = reinterpret_cast<const float4*>(row);
#pragma unroll 4
    for (int64_t q = group.lane; q < cols / kRun; q += kRowThreads) {
      const float4 v = __ldg(runs + q);
      float g[kRun] = {expf(v.x - l) * scale, expf(v.y - l) * scale, expf(v.z - l) * scale, expf(v.w - l) * scale};
#pragma unroll
      for (int k = 0; k < kRun; ++k)
        if (q * kRun + k == t) g[k] -= scale;
      store_aligned_run(out + q * kRun, g);
    }
  } else {
#pragma unroll 4
    for (int64_t c = group.lane; c < cols; c += kRowThreads) {
      float g = expf(row[c] - l) * scale;
      if (c == t) g -= scale;
      out[c] = from_float<T>(g);
    }
  }
}

template <typename T>
void softmax_grad(const float* logits, const float* lse, const int32_t* targets, T* p, int64_t rows, int64_t cols,
                  int64_t v0, float scale, cudaStream_t stream) {
  const bool vectorised = vector_rows(logits, cols) && reinterpret_cast<uintptr_t>(p) % (kRun * sizeof(T)) == 0;
  if (cols <= kWarpPerRowMaxCols)
    softmax_grad_kernel<T, 32><<<RowGroup<32>::blocks(rows), kThreads, 0, stream>>>(logits, lse, targets, p, rows,
                                                                                     cols, v0, vectorised, scale);
  else
    softmax_grad_kernel<T, kThreads><<<RowGroup<kThreads>::blocks(rows), kThreads, 0, stream>>>(
        logits, lse, targets, p, rows, cols, v0, vectorised, scale);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

}  // namespace

template <typename T>
void cross_entropy_forward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, float* lse, float* loss,
                           cudaStream_t stream) {
  ML_CHECK(d.rows > 0 && d.vocab > 0 && d.dim > 0, "cross_entropy_forward: empty problem rows=", d.rows, " vocab=",
           d.vocab, " dim=", d.dim);
  ML_CHECK(d.rows <= 0x7fffffff, "cross_entropy_forward: ", d.rows, " rows exceed one launch");
  const int64_t cols = chunk_columns(d);
  DeviceBuffer<float> logits(d.rows * cols, "cross_entropy_forward"), state(3 * d.rows, "cross_entropy_forward");
  float *running_max = state.get(), *running_sum = running_max + d.rows, *target_logit = running_sum + d.rows;
  online_softmax_init_kernel<<<blocks_for(d.rows, kThreads), kThreads, 0, stream>>>(running_max, running_sum,
                                                                                     target_logit, d.rows);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    gemm<T, float>(false, true, d.rows, vc, d.dim, 1.f, h, d.dim, E + v0 * d.dim, d.dim, 0.f, logits.get(), vc, stream);
    online_softmax_update(logits.get(), d.rows, vc, v0, targets, running_max, running_sum, target_logit, stream);
  }
  finish_kernel<<<1, 1024, 0, stream>>>(running_max, running_sum, target_logit, lse, loss, d.rows);
  ML_CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

template <typename T>
void cross_entropy_backward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, const float* lse,
                            float dloss, float* dh, float* dE, cudaStream_t stream) {
  ML_CHECK(d.rows > 0 && d.vocab > 0 && d.dim > 0, "cross_entropy_backward: empty problem rows=", d.rows, " vocab=",
           d.vocab, " dim=", d.dim);
  ML_CHECK(d.rows <= 0x7fffffff, "cross_entropy_backward: ", d.rows, " rows exceed one launch");
  const int64_t cols = chunk_columns(d);
  const float scale = dloss / float(d.rows);
  DeviceBuffer<float> logits(d.rows * cols, "cross_entropy_backward");
  DeviceBuffer<T> p(d.rows * cols, "cross_entropy_backward");
  for (int64_t v0 = 0; v0 < d.vocab; v0 += cols) {
    const int64_t vc = std::min(cols, d.vocab - v0);
    const T* Ec = E + v0 * d.dim;
    gemm<T, float>(false, true, d.rows, vc, d.dim, 1.f, h, d.dim, Ec, d.dim, 0.f, logits.get(), vc, stream);
    softmax_grad(logits.get(), lse, targets, p.get(), d.rows, vc, v0, scale, stream);
    gemm<T, float>(false, false, d.rows, d.dim, vc, 1.f, p.get(), vc, Ec, d.dim, v0 ? 1.f : 0.f, dh, d.dim, stream);
    gemm<T, float>(true, false, vc, d.dim, d.rows, 1.f, p.get(), vc, h, d.dim, 1.f, dE + v0 * d.dim, d.dim, stream);
  }
}

template <typename T>
void cross_entropy_forward_backward(const HeadDims& d, const T* h, const T* E, const int32_t* targets, float* lse,
                                    float* loss, float dloss, float* dh, float* dE, cudaStream_t stream) {
  constexpr const char* op = "cross_entropy_forward_backward";
  ML_CHECK(d.rows > 0 && d.vocab > 0 && d.dim > 0, op, ": empty problem rows=", d.rows, " vocab=", d.vocab, " dim=",
           d.dim);
  ML_CHECK(d.rows <= 0x7fffffff, op, ": ", d.rows, " rows exceed one launch");
  const int64_t per_chunk = std::clamp<int64_t>(chunk_columns(d) * d.rows / d.vocab, 1, d.rows);
  const float scale = dloss / float(d.rows);
  DeviceBuffer<float> logits(per_chunk * d.vocab, op), state(3 * d.rows, op);
  DeviceBuffer<T> p(per_chunk * d.vocab, op);
  float *running_max = state.get(), *running_sum = running_max + d.rows, *target_logit = running_sum + d.rows;
  online_softmax_init_kernel<<<blocks_for(d.rows, kThreads), kThreads, 0, stream>>>(running_max, running_sum,
                                                                                     target_logit, d.rows);
  ML_CUDA_CHECK_LAUNCH(op);
  for (int64_t r0 = 0; r0 < d.rows; r0 += per_chunk) {
    const int64_t rc = std::min(per_chunk, d.rows - r0);
    const T* hc = h + r0 * d.dim;
    gemm<T, float>(false, true, rc, d.vocab, d.dim, 1.f, hc, d.dim, E, d.dim, 0.f, logits.get(), d.vocab, stream);
    online_softmax_update(logits.get(), rc, d.vocab, 0, targets + r0, running_max + r0, running_sum + r0,
                          target_logit + r0, stream);
    lse_kernel<<<blocks_for(rc, kThreads), kThreads, 0, stream>>>(running_max + r0, running_sum + r0, lse + r0, rc);
    ML_CUDA_CHECK_LAUNCH(op);
    softmax_grad(logits.get(), lse + r0, targets + r0, p.get(), rc, d.vocab, 0, scale, stream);
    gemm<T, float>(false, false, rc, d.dim, d.vocab, 1.f, p.get(), d.vocab, E, d.dim, 0.f, dh + r0 * d.dim, d.dim,
                   stream);
    gemm<T, float>(true, false, d.vocab, d.dim, rc, 1.f, p.get(), d.vocab, hc, d.dim, 1.f, dE, d.dim, stream);
  }
  finish_kernel<<<1, 1024, 0, stream>>>(running_max, running_sum, target_logit, lse, loss, d.rows);
  ML_CUDA_CHECK_LAUNCH(op);
}

#define ML_INSTANTIATE(T)                                                                                            \
  template void cross_entropy_forward<T>(const HeadDims&, const T*, const T*, const int32_t*, float*, float*,        \
                                         cudaStream_t);                                                             \
  template void cross_entropy_backward<T>(const HeadDims&, const T*, const T*, const int32_t*, const float*, float, \
                                          float*, float*, cudaStream_t);                                      \
  template void cross_entropy_forward_backward<T>(const HeadDims&, const T*, const T*, const int32_t*, float*,      \
                                                  float*, float, float*, float*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
