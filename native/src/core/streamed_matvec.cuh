// Matrix–vector products of a decode step (a few input rows against a weight matrix whose rows
// are the output columns), streamed: at batch 1 the matrix is all the traffic, so what matters is
// how much of it is in flight. A block stages its input rows in shared memory once, then each
// warp walks a list of (column, round) items, where a round is up to kSlice elements of its part
// of the column, always issuing the next item's weight loads before multiplying the current one.
// Blocks are resident at once (the grid at most what the GPU holds) and take column groups
// blockIdx.x, + gridDim.x, …, so a matrix of many columns streams without waves of block starts,
// and a long row without a round trip per round. Weights are loaded before the chained wait when
// the job allows it (no running kernel writes them).
//
// A job says what the product feeds:
//   stage(staged, stride)  all threads, after the wait: the input rows into shared memory (rows
//                          × stride elements of T, zero past the row's length);
//   ahead(n, lane)         loaded as column n's first round starts (before the wait for a block's
//                          first column when weights come first): what finish needs besides
//                          the dots, e.g. a conv window that no kernel running now writes;
//   finish(n, lane, dots, ahead)  every lane of column n's first warp, with the column's dot
//                          products of the kRows input rows (summed in a fixed order).
#pragma once
#include <algorithm>
#include <cstdint>

#include "chained_launch.cuh"
#include "cuda_math.cuh"
#include "vector_io.cuh"

namespace ml::cuda {

namespace streamed {
constexpr int kRun = 8, kRuns = 4;
constexpr int64_t kSlice = 32 * kRun * kRuns;  // elements a warp loads in one round

// A staged row's stride: whole runs, so every run read from shared memory is whole.
__host__ __device__ inline int64_t row_stride(int64_t length) { return (length + kRun - 1) / kRun * kRun; }

// The shared memory a block stages `rows` input rows of `length` elements in, and the most a
// product takes that way (a block's default limit, asking for no more).
inline size_t staged_bytes(int64_t rows, int64_t length, int64_t element_bytes) {
  return size_t(rows * row_stride(length) * element_bytes);
}
constexpr size_t kMaxStagedBytes = 48 * 1024;

// Warps per column: split K over more warps when there are few columns, so that about 4096
// warps stream the matrix (an H100/H200 holds 132 × 64).
inline int warps_per_column(int64_t columns) {
  return columns >= 4096 ? 1 : columns >= 2048 ? 2 : columns >= 1024 ? 4 : 8;
}

// Blocks of `kernel` that the current device holds at once (asked once per kernel and shared
// memory size); 0 when the query fails.
int64_t resident_blocks(const void* kernel, int threads, size_t shared_bytes);

// Elements of run u (of a lane's kRuns, 32·kRun apart) inside the first `in_row`.
__device__ __forceinline__ int run_length(int in_row, int u) { return max(0, min(kRun, in_row - u * 32 * kRun)); }

template <typename T>
__device__ __forceinline__ void load_shared_run(Run<T, kRun>& r, const T* p) {
  static_assert(Run<T, kRun>::kWords % 4 == 0, "a run is whole 16-byte words");
#pragma unroll
  for (int q = 0; q < Run<T, kRun>::kWords / 4; ++q) {
    const uint4 v = reinterpret_cast<const uint4*>(p)[q];
    r.w[4 * q] = v.x, r.w[4 * q + 1] = v.y, r.w[4 * q + 2] = v.z, r.w[4 * q + 3] = v.w;
  }
}

// Rows [0, rows) of `length` elements, `ld` apart, into shared memory `stride` apart, zero-padded.
template <typename T>
__device__ __forceinline__ void stage_rows(T* staged, int64_t stride, const T* __restrict__ rows_in, int64_t ld,
                                           int rows, int64_t length) {
  const int runs = int(stride / kRun);
  for (int i = threadIdx.x; i < rows * runs; i += blockDim.x) {
    const int m = i / runs, k = i % runs * kRun;
    Run<T, kRun> r;
    load_run(r, rows_in + m * ld + k, int(min(int64_t(kRun), length - k)));
    uint32_t* to = reinterpret_cast<uint32_t*>(staged + m * stride + k);
#pragma unroll
    for (int w = 0; w < Run<T, kRun>::kWords; ++w) to[w] = r.w[w];
  }
}
}  // namespace streamed

// The whole product of one block (see above). N columns of `length` elements, `ld` apart in
// `weights`; rows ≤ kRows input rows. `staged` is the block's dynamic shared memory.
template <int kRows, int kWarps, int kParts, bool kWeightsFirst, typename T, typename Job>
__device__ __forceinline__ void stream_columns(const Job& job, const T* __restrict__ weights, int64_t N,
                                               int64_t length, int64_t ld, int rows, T* staged) {
  using namespace streamed;
  constexpr int kColumns = kWarps / kParts;
  __shared__ float partial[2][kWarps][kRows];  // by column parity: a warp may write the next before all have read
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % kParts;
  // Lengths and counts in 32 bits (the staged rows fit shared memory; N < 2³¹): fewer registers.
  const int K = int(length), stride = int(row_stride(K));
  const int chunk = (K + kRun * kParts - 1) / (kRun * kParts) * kRun;  // whole runs: slices stay aligned
  const int k0 = min(K, part * chunk), len = min(K, k0 + chunk) - k0;
  const int rounds = chunk > kSlice ? (chunk + int(kSlice) - 1) / int(kSlice) : 1;
  const int groups = int((N + kColumns - 1) / kColumns), blocks = int(gridDim.x), block = int(blockIdx.x);
  const int items = (groups - block + blocks - 1) / blocks * rounds;  // the same for every warp of the block
  const auto column = [&](int t) { return (block + t / rounds * blocks) * kColumns + warp / kParts; };

  using Ahead = typename Job::Ahead;
  // A set of loads: the lane's runs of one item, and how many of its elements are in the row
  // (run u holds min(kRun, in_row − u·32·kRun) of them).
  Run<T, kRun> w[kRuns];
  int left = 0;
  const auto load = [&](int t, Run<T, kRun>(&into)[kRuns]) {
    const int n = column(t), base = t % rounds * int(kSlice) + lane * kRun;
    const T* from = weights + int64_t(n < N ? n : 0) * ld + k0 + base;
    const int in_row = max(0, min(int(kSlice), (n < N ? len : 0) - base));
#pragma unroll
    for (int u = 0; u < kRuns; ++u) load_run(into[u], from + u * 32 * kRun, run_length(in_row, u));
    return in_row;
  };
  Ahead ahead{};
  if constexpr (!kWeightsFirst) chain_wait();
  left = load(0, w);
  if (part == 0) ahead = job.ahead(column(0), lane);
  if constexpr (kWeightsFirst) chain_wait();
  job.stage(staged, stride);
  __syncthreads();

  float dots[kRows];
#pragma unroll
  for (int m = 0; m < kRows; ++m) dots[m] = 0.f;
  for (int t = 0; t < items; ++t) {
    Run<T, kRun> next[kRuns];
    int next_left = 0;
    if (t + 1 < items) next_left = load(t + 1, next);
    // A later column's extras are loaded as its first round starts (one set of registers, not
    // two: the front's occupancy depends on them); the first column's came before the wait.
    if (part == 0 && t > 0 && t % rounds == 0) ahead = job.ahead(column(t), lane);
    const int base = t % rounds * int(kSlice) + lane * kRun;
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      if (m >= rows) break;
#pragma unroll
      for (int u = 0; u < kRuns; ++u) {
        if (run_length(left, u) == 0) continue;
        Run<T, kRun> v;
        load_shared_run(v, staged + m * stride + k0 + base + u * 32 * kRun);
#pragma unroll
        for (int k = 0; k < kRun; ++k) dots[m] += w[u].at(k) * v.at(k);
      }
    }
    if (t % rounds == rounds - 1) {  // the column's last round: sum, then hand it over
#pragma unroll
      for (int m = 0; m < kRows; ++m) {
        if (m >= rows) break;
        dots[m] = warp_sum(dots[m]);
      }
      if constexpr (kParts > 1) {
        const int parity = t / rounds & 1;
        if (lane == 0)
          for (int m = 0; m < kRows; ++m) partial[parity][warp][m] = dots[m];
        __syncthreads();
        if (part == 0) {
#pragma unroll
          for (int m = 0; m < kRows; ++m) {
            dots[m] = partial[parity][warp][m];
            for (int p = 1; p < kParts; ++p) dots[m] += partial[parity][warp + p][m];
          }
        }
      }
      const int n = column(t);
      if (part == 0 && n < N) job.finish(n, lane, dots, ahead);
#pragma unroll
      for (int m = 0; m < kRows; ++m) dots[m] = 0.f;
    }
    if (t + 1 < items) {
#pragma unroll
      for (int u = 0; u < kRuns; ++u) w[u] = next[u];
      left = next_left;
    }
  }
}

// The grid for a product of `groups` column groups per batch member: one block per group, at
// most what the device holds at once (then blocks take several groups).
inline unsigned streamed_grid(const void* kernel, int threads, size_t shared_bytes, int64_t groups, int64_t batch) {
  const int64_t resident = streamed::resident_blocks(kernel, threads, shared_bytes);
  if (resident <= 0) return unsigned(groups);  // the query failed: one block per group is always right
  return unsigned(std::min(std::max<int64_t>(1, resident / batch), groups));
}

}  // namespace ml::cuda
