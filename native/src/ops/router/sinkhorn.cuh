// Sinkhorn balancing on the GPU (router.h), fp64 as the CPU reference, included by cuda.cu.
//   cost:  one warp per token: K[t,e] = exp(2·(logit − row max)) and the sigmoid probabilities.
//   step:  one launch per iteration, a tile of tokens per block: the row scales
//          r[t] = 1/(T·Σ_e K[t,e]·c[e]) (ones for the initialisation), then the block's partial
//          column sums Σ_t K[t,e]·r[t]; the last block to finish (an arrival ticket) adds the
//          partials in block order, c' = 1/(E·sum), tests the change of the normalised scales
//          and sets `converged`, after which the remaining launches return at once. So up to
//          max_iter iterations run with no host synchronisation, and every sum has a fixed order.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../core/cuda_math.cuh"

namespace ml::cuda::sinkhorn {

constexpr int kThreads = 256;
constexpr int kTokensPerThread = 4;
constexpr int64_t kTile = int64_t(kThreads) * kTokensPerThread;

struct State {
  int converged;
  unsigned arrivals;  // blocks of the current step that have written their partial sums
};

inline int64_t blocks(int64_t tokens) { return std::max<int64_t>((tokens + kTile - 1) / kTile, 1); }

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

// kInitialise: rows of ones, and c' replaces c with no convergence test (BlackMamba's
// initialisation c = 1/(E · column sum)).
template <bool kInitialise>
__global__ void __launch_bounds__(kThreads) step_kernel(const double* __restrict__ cost, int64_t tokens, int experts,
                                                        double* __restrict__ col, double* __restrict__ next,
                                                        double* __restrict__ partial, State* __restrict__ state,
                                                        double tol) {
  if (state->converged) return;  // set only by an earlier launch: the same for every block
  __shared__ double scratch[32];
  __shared__ bool last;
  const int64_t base = int64_t(blockIdx.x) * kTile;
  double row[kTokensPerThread];
#pragma unroll
  for (int j = 0; j < kTokensPerThread; ++j) {
    const int64_t t = base + j * kThreads + threadIdx.x;
    row[j] = 0.0;
    if (t >= tokens) continue;
    if (kInitialise) {
      row[j] = 1.0;
      continue;
    }
    double s = 0.0;
    for (int e = 0; e < experts; ++e) s += cost[t * experts + e] * col[e];
    row[j] = 1.0 / (double(tokens) * s);  // every row of K holds a 1 (its max): s > 0
  }
  for (int e = 0; e < experts; ++e) {
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < kTokensPerThread; ++j) {
      const int64_t t = base + j * kThreads + threadIdx.x;
      if (t < tokens) s += cost[t * experts + e] * row[j];
    }
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) partial[int64_t(blockIdx.x) * experts + e] = s;
  }
  if (threadIdx.x == 0) {
    __threadfence();  // the partials are visible before the ticket is taken
    last = atomicAdd(&state->arrivals, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int e = threadIdx.x; e < experts; e += kThreads) {
    double s = 0.0;
    for (unsigned b = 0; b < gridDim.x; ++b) s += __ldcg(partial + int64_t(b) * experts + e);  // past L1
    next[e] = 1.0 / (double(experts) * s);
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  state->arrivals = 0;
  // cpu's test, in cpu's order: scales are defined up to a common factor, so compare them
  // normalised to sum 1.
  double old_sum = 0.0, new_sum = 0.0, change = 0.0;
  if (!kInitialise) {
    for (int e = 0; e < experts; ++e) old_sum += col[e], new_sum += next[e];
    for (int e = 0; e < experts; ++e) change += fabs(next[e] / new_sum - col[e] / old_sum);
  }
  for (int e = 0; e < experts; ++e) col[e] = next[e];
  if (!kInitialise && change < tol) state->converged = 1;
}

}  // namespace ml::cuda::sinkhorn
