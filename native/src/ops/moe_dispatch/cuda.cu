#include <cuda_runtime.h>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "../../core/vector_io.cuh"
#include "moe_dispatch.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

// One thread: the number of experts is small.
__global__ void segment_offsets_kernel(const int64_t* __restrict__ counts, int64_t experts, int64_t segment,
                                       int64_t* __restrict__ offsets) {
  int64_t run = 0;
  for (int64_t e = 0; e < experts; ++e) {
    offsets[e] = run;
    run += (counts[e] + segment - 1) / segment * segment;
  }
}

__global__ void place_kernel(const int32_t* __restrict__ expert, const uint8_t* __restrict__ kept,
                             const int32_t* __restrict__ rank, const int64_t* __restrict__ offsets, int64_t capacity,
                             int64_t assignments, int32_t* __restrict__ slot, int32_t* __restrict__ source) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < assignments;
       a += int64_t(gridDim.x) * blockDim.x) {
    if (!kept[a]) {
      slot[a] = -1;
      continue;
    }
    const int e = expert[a];
    const int64_t s = (offsets ? offsets[e] : e * capacity) + rank[a];
    slot[a] = int32_t(s);
    source[s] = int32_t(a);
  }
}

// gather and combine copy rows in runs of kRun elements (16-byte accesses for bf16 where rows
// allow; element by element otherwise): one 2-byte access per element and thread, with a 64-bit
// division each, ran them at a fifth of the memory bandwidth.
constexpr int kRun = 8;

// Row `row` and its run [j, j + valid) of run index i over rows of d elements.
struct RowRun {
  int64_t row, j;
  int valid;
  __device__ RowRun(int64_t i, int64_t runs_per_row, int64_t d) {
    row = i / runs_per_row;
    j = (i - row * runs_per_row) * kRun;
    valid = d - j < kRun ? int(d - j) : kRun;
  }
};

template <typename T>
__global__ void gather_kernel(const T* __restrict__ src, const T* __restrict__ scale,
                              const int32_t* __restrict__ source, int64_t slots, int64_t tokens, int64_t d,
                              T* __restrict__ dst) {
  const int64_t runs_per_row = (d + kRun - 1) / kRun;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < slots * runs_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const RowRun r(i, runs_per_row, d);
    const int32_t a = source[r.row];
    float v[kRun];
    if (a >= 0) {
      Run<T, kRun> x;
      load_run(x, src + (a % tokens) * d + r.j, r.valid);
      const float k = scale ? to_float(scale[a]) : 1.f;
#pragma unroll
      for (int e = 0; e < kRun; ++e) v[e] = x.at(e) * k;
    } else {
#pragma unroll
      for (int e = 0; e < kRun; ++e) v[e] = 0.f;
    }
    store_run(dst + r.row * d + r.j, v, r.valid);
  }
}

template <typename T>
__global__ void combine_kernel(const T* __restrict__ src, const T* __restrict__ scale, const int32_t* __restrict__ slot,
                               int64_t tokens, int64_t top_k, int64_t d, T* __restrict__ dst) {
  const int64_t runs_per_row = (d + kRun - 1) / kRun;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < tokens * runs_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const RowRun r(i, runs_per_row, d);
    float v[kRun];
#pragma unroll
    for (int e = 0; e < kRun; ++e) v[e] = 0.f;
    for (int64_t c = 0; c < top_k; ++c) {
      const int64_t a = c * tokens + r.row;
      const int32_t s = slot[a];
      if (s < 0) continue;
      Run<T, kRun> x;
      load_run(x, src + int64_t(s) * d + r.j, r.valid);
      const float k = scale ? to_float(scale[a]) : 1.f;
#pragma unroll
      for (int e = 0; e < kRun; ++e) v[e] += x.at(e) * k;
    }
    store_run(dst + r.row * d + r.j, v, r.valid);
  }
}

// One warp per assignment.
template <typename T>
__global__ void gate_grad_kernel(const T* __restrict__ dy, const T* __restrict__ out, const int32_t* __restrict__ slot,
                                 int64_t tokens, int64_t assignments, int64_t d, T* __restrict__ dgates) {
  const int lane = threadIdx.x & 31;
  const int64_t a = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (a >= assignments) return;
  const int32_t s = slot[a];
  float v = 0.f;
  if (s >= 0) {
    const T* g = dy + (a % tokens) * d;
    const T* o = out + int64_t(s) * d;
    for (int64_t j = lane; j < d; j += 32) v += to_float(g[j]) * to_float(o[j]);
  }
  v = warp_sum(v);
  if (lane == 0) dgates[a] = from_float<T>(v);
}

}  // namespace

void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets, cudaStream_t stream) {
  segment_offsets_kernel<<<1, 1, 0, stream>>>(counts, experts, segment, offsets);
  ML_CUDA_CHECK_LAUNCH("moe_dispatch (segment offsets)");
}

void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
           int64_t assignments, int64_t slots, int32_t* slot, int32_t* source, cudaStream_t stream) {
  ML_CHECK(slots < int64_t(INT32_MAX), "moe_dispatch: ", slots, " expert rows exceed int32");
  if (slots > 0)
    ML_CUDA_CHECK("moe_dispatch (place)", cudaMemsetAsync(source, 0xff, size_t(slots) * sizeof(int32_t), stream));
  if (assignments <= 0) return;
  place_kernel<<<blocks_for(assignments, kThreads), kThreads, 0, stream>>>(expert, kept, rank, offsets, capacity,
                                                                          assignments, slot, source);
  ML_CUDA_CHECK_LAUNCH("moe_dispatch (place)");
}

template <typename T>
void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d, T* dst,
            cudaStream_t stream) {
  if (slots * d <= 0) return;
  const unsigned blocks = blocks_for(slots * ((d + kRun - 1) / kRun), kThreads);
  gather_kernel<T><<<blocks, kThreads, 0, stream>>>(src, scale, source, slots, tokens, d, dst);
  ML_CUDA_CHECK_LAUNCH("moe_dispatch (gather)");
}

template <typename T>
void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d, T* dst,
             cudaStream_t stream) {
  if (tokens * d <= 0) return;
  const unsigned blocks = blocks_for(tokens * ((d + kRun - 1) / kRun), kThreads);
  combine_kernel<T><<<blocks, kThreads, 0, stream>>>(src, scale, slot, tokens, top_k, d, dst);
  ML_CUDA_CHECK_LAUNCH("moe_dispatch (combine)");
}

template <typename T>
void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
               T* dgates, cudaStream_t stream) {
  if (assignments <= 0) return;
  const int64_t blocks = (assignments + kWarpsPerBlock - 1) / kWarpsPerBlock;
  ML_CHECK(blocks <= 0x7fffffff, "moe_dispatch: ", assignments, " assignments exceed one launch");
  gate_grad_kernel<T><<<unsigned(blocks), kThreads, 0, stream>>>(dy, out, slot, tokens, assignments, d, dgates);
  ML_CUDA_CHECK_LAUNCH("moe_dispatch (gate gradients)");
}

#define ML_INSTANTIATE(T)                                                                                           \
  template void gather<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*, cudaStream_t);        \
  template void combine<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*, cudaStream_t);       \
  template void gate_grad<T>(const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
