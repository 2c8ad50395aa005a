// Sinkhorn balancing on the GPU (router.h), fp64 as the CPU reference, included by cuda.cu.
//   cost:    one warp per token: K[t,e] = exp(2·(logit − row max)) and the sigmoid probabilities.
//   balance: one cooperative launch runs the initialisation and every iteration, so no launches
//            queue up behind convergence. The tokens are cut into at most kMaxTiles tiles; per
//            iteration a tile's block computes its row scales r[t] = 1/(T·Σ_e K[t,e]·c[e]) (ones
//            for the initialisation) and the tile's column sums Σ_t K[t,e]·r[t]. After one
//            grid-wide barrier every block adds all tiles' sums in the same order, so every block
//            holds the same c' = 1/(E·sum), takes the same convergence decision and stops at the
//            same iteration: no flag, no second barrier. Sum orders depend on the token count
//            only, not on the grid size (the device), and use no atomics.
#pragma once
#include <cooperative_groups.h>

#include <algorithm>
#include <cstdint>

#include "../../core/cuda_math.cuh"

namespace ml::cuda::sinkhorn {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxTiles = 128;   // bounds the partial sums every block re-adds after the barrier
constexpr int kExpertChunk = 32;  // column sums kept in registers at once

// Tiles of a multiple of kThreads tokens, the smallest such that at most kMaxTiles cover the tokens.
struct Tiling {
  int64_t tile_tokens;
  int tiles;
};

inline Tiling tiling(int64_t tokens) {
  const int64_t chunks = std::max<int64_t>((tokens + kThreads - 1) / kThreads, 1);  // of kThreads tokens
  const int64_t tile_tokens = kThreads * ((chunks + kMaxTiles - 1) / kMaxTiles);
  return {tile_tokens, int(std::max<int64_t>((tokens + tile_tokens - 1) / tile_tokens, 1))};
}

template <typename T>
__global__ void cost_kernel(const T* __restrict__ logits, int64_t tokens, int experts, T* __restrict__ probs,
                            double* __restrict__ cost) {
  const int lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (t >= tokens) return;
  const T* row = logits + t * experts;
  float m = -INFINITY;
  for (int e = lane; e < experts; e += 32) m = fmaxf(m, to_float(row[e]));
  m = warp_max(m);
  for (int e = lane; e < experts; e += 32) {
    const float l = to_float(row[e]);
    probs[t * experts + e] = from_float<T>(sigmoid32(l));
    cost[t * experts + e] = exp(2.0 * (double(l) - double(m)));
  }
}

// Launched cooperatively with at most `tiles` blocks; blocks take tiles blockIdx.x, + gridDim.x, …
//   partial: (2, tiles, experts) the tiles' column sums, alternating between iterations so that
//            a block may write the next ones while a slower block still reads the last ones.
//   scales:  (gridDim.x, 2, experts) each block's own copy of c and c', written and read by that
//            block only (every copy holds the same values).
//   rows:    (tokens) the row scales, needed only when the experts span several chunks.
//   col:     (experts) the final c, from block 0.
__global__ void __launch_bounds__(kThreads)
    balance_kernel(const double* __restrict__ cost, int64_t tokens, int experts, int64_t tile_tokens, int tiles,
                   int64_t max_iter, double tol, double* partial, double* scales, double* rows, double* col) {
  __shared__ double warp_sums[kWarps][kExpertChunk];
  __shared__ bool done;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double* const own_scales = scales + int64_t(blockIdx.x) * 2 * experts;
  int current = 0;
  for (int64_t it = 0;; ++it) {
    const bool initialise = it == 0;  // BlackMamba's initialisation: rows of ones, no convergence test
    double* part = partial + (it & 1) * int64_t(tiles) * experts;
    const double* c = own_scales + current * experts;
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t begin = tile * tile_tokens, end = min(tokens, begin + tile_tokens);
      for (int e0 = 0; e0 < experts; e0 += kExpertChunk) {
        double sum[kExpertChunk] = {};
        for (int64_t t = begin + threadIdx.x; t < end; t += kThreads) {
          const double* k = cost + t * experts;
          double r = 1.0;
          if (!initialise && e0 == 0) {
            double s = 0.0;
            for (int e = 0; e < experts; ++e) s += k[e] * c[e];
            r = 1.0 / (double(tokens) * s);  // every row of K holds a 1 (its max): s > 0
            if (experts > kExpertChunk) rows[t] = r;
          } else if (!initialise) {
            r = rows[t];
          }
#pragma unroll
          for (int j = 0; j < kExpertChunk; ++j)
            if (e0 + j < experts) sum[j] += k[e0 + j] * r;
        }
#pragma unroll
        for (int j = 0; j < kExpertChunk; ++j) {
          if (e0 + j >= experts) break;
          const double s = warp_sum(sum[j]);
          if (lane == 0) warp_sums[warp][j] = s;
        }
        __syncthreads();
        if (threadIdx.x < kExpertChunk && e0 + int(threadIdx.x) < experts) {
          double s = 0.0;
          for (int w = 0; w < kWarps; ++w) s += warp_sums[w][threadIdx.x];
          part[int64_t(tile) * experts + e0 + threadIdx.x] = s;
        }
        __syncthreads();  // warp_sums is reused by the next chunk
      }
    }
    cooperative_groups::this_grid().sync();
    double* next = own_scales + (current ^ 1) * experts;
    for (int e = warp; e < experts; e += kWarps) {
      double s = 0.0;
      for (int tile = lane; tile < tiles; tile += 32) s += __ldcg(part + int64_t(tile) * experts + e);  // past L1
      s = warp_sum(s);
      if (lane == 0) next[e] = 1.0 / (double(experts) * s);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      // cpu's test, in cpu's order: scales are defined up to a common factor, so compare them
      // normalised to sum 1.
      bool converged = false;
      if (!initialise) {
        double old_sum = 0.0, new_sum = 0.0, change = 0.0;
        for (int e = 0; e < experts; ++e) old_sum += c[e], new_sum += next[e];
        for (int e = 0; e < experts; ++e) change += fabs(next[e] / new_sum - c[e] / old_sum);
        converged = change < tol;
      }
      done = converged || it >= max_iter;
    }
    current ^= 1;
    __syncthreads();
    if (done) break;
  }
  if (blockIdx.x == 0)
    for (int e = threadIdx.x; e < experts; e += kThreads) col[e] = own_scales[current * experts + e];
}

}  // namespace ml::cuda::sinkhorn
