// Both routers. Forward:
//   1. one warp per token: the probabilities (softmax for switch, sigmoid for Sinkhorn), then
//      top_k by k warp arg-maxes on the logits, or for Sinkhorn in training on the balanced
//      scores after the balancing (sinkhorn.cuh);
//   2. one warp per chunk of kChunk assignments of one choice: each assignment's rank among the
//      chunk's assignments to its expert (__match_any_sync), and the chunk's per-expert counts;
//   3. one block: per expert, the exclusive prefix sum of the chunk counts in assignment order,
//      the kept counts, dropped and the first-choice counts; the aux loss from the column sums
//      of the probabilities (one block per expert, fixed order);
//   4. per assignment: rank = chunk offset + rank in chunk; kept = rank < capacity; gate.
// route_choices is pass 1 alone, its warps also writing the gates (every assignment kept).
// Backward: one warp per token, dp = aux term + kept gates; switch: dlogit = p ⊙ (dp − ⟨dp, p⟩),
// Sinkhorn: dlogit = dp · σ(1 − σ).
#include <climits>
#include <cmath>

#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "router.h"
#include "sinkhorn.cuh"

namespace ml::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kChunk = 1024;  // assignments per warp in the capacity pass
constexpr int kMaxExperts = 8192;  // the capacity pass keeps one counter per expert in shared memory

// (v, i) ranks before (bv, bi): larger value, ties to the lower index; bi < 0 is "none yet".
template <typename V>
__device__ __forceinline__ bool before(V v, int i, V bv, int bi) {
  return bi < 0 || v > bv || (v == bv && i < bi);
}

// The top_k experts of token t by score(e) (float or double), largest first, ties to the lower
// index, into expert[c · tokens + t]. The c-th choice is the best (value, index) ranking after
// the (c−1)-th: no list of the taken. Called by a whole warp.
template <typename V, typename Score>
__device__ void warp_top_k(Score score, int experts, int top_k, int64_t tokens, int64_t t, int32_t* expert) {
  const int lane = threadIdx.x & 31;
  V prev_v = INFINITY;
  int prev_i = -1;
  for (int c = 0; c < top_k; ++c) {
    V bv = -INFINITY;
    int bi = -1;
    for (int e = lane; e < experts; e += 32) {
      const V v = score(e);
      const bool after_prev = c == 0 || v < prev_v || (v == prev_v && e > prev_i);
      if (after_prev && before(v, e, bv, bi)) bv = v, bi = e;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const V ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (oi >= 0 && before(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if (bi < 0) bi = 0;  // only with NaN scores (unsupported): keep the index in range
    if (lane == 0) expert[int64_t(c) * tokens + t] = bi;
    prev_v = bv, prev_i = bi;
  }
}

// The probabilities (softmax or sigmoid) and the top_k on the logits; with gates (route_choices),
// each choice's gate = its probability, as the capacity pass writes a kept assignment's.
template <typename T, bool kSoftmax>
__global__ void probs_topk_kernel(const T* __restrict__ logits, int64_t tokens, int experts, int top_k,
                                  T* __restrict__ probs, int32_t* __restrict__ expert, T* __restrict__ gates) {
  chain_wait();
  const int lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (t >= tokens) return;  // whole warps only
  const T* row = logits + t * experts;
  T* p = probs + t * experts;
  if (kSoftmax) {
    float m = -INFINITY;
    for (int e = lane; e < experts; e += 32) m = fmaxf(m, to_float(row[e]));
    m = warp_max(m);
    float s = 0.f;
    for (int e = lane; e < experts; e += 32) s += expf(to_float(row[e]) - m);
    s = warp_sum(s);
    for (int e = lane; e < experts; e += 32) p[e] = from_float<T>(expf(to_float(row[e]) - m) / s);
  } else {
    for (int e = lane; e < experts; e += 32) p[e] = from_float<T>(sigmoid32(to_float(row[e])));
  }
  warp_top_k<float>([&](int e) { return to_float(row[e]); }, experts, top_k, tokens, t, expert);
  if (!gates) return;
  __syncwarp();  // the other lanes' probabilities and lane 0's choices are visible after this
  for (int c = lane; c < top_k; c += 32) {
    const int64_t a = int64_t(c) * tokens + t;
    gates[a] = p[expert[a]];
  }
}

// Sinkhorn in training: the top_k of the balanced scores K[t,e]·c[e].
__global__ void balanced_topk_kernel(const double* __restrict__ cost, const double* __restrict__ col, int64_t tokens,
                                     int experts, int top_k, int32_t* __restrict__ expert) {
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (t >= tokens) return;
  const double* row = cost + t * experts;
  warp_top_k<double>([&](int e) { return row[e] * col[e]; }, experts, top_k, tokens, t, expert);
}

// One warp per chunk: chunk = choice · chunks_per_choice + j covers tokens [j·kChunk, …) of
// that choice, so chunks are in assignment order.
__global__ void chunk_rank_kernel(const int32_t* __restrict__ expert, int64_t tokens, int64_t chunks_per_choice,
                                  int experts, int32_t* __restrict__ local_rank, int32_t* __restrict__ chunk_counts) {
  extern __shared__ int32_t count[];
  const int lane = threadIdx.x;
  for (int e = lane; e < experts; e += 32) count[e] = 0;
  __syncwarp();
  const int64_t chunk = blockIdx.x, choice = chunk / chunks_per_choice, j = chunk % chunks_per_choice;
  const int64_t t_end = min(tokens, (j + 1) * kChunk);
  for (int64_t t0 = j * kChunk; t0 < t_end; t0 += 32) {
    const int64_t t = t0 + lane;
    const bool valid = t < t_end;
    const int64_t a = choice * tokens + t;
    const int e = valid ? expert[a] : -1;
    const unsigned same = __match_any_sync(0xffffffffu, e);
    const int base = valid ? count[e] : 0;
    __syncwarp();
    if (valid) {
      local_rank[a] = base + __popc(same & ((1u << lane) - 1u));
      if (lane == __ffs(same) - 1) count[e] = base + __popc(same);
    }
    __syncwarp();
  }
  for (int e = lane; e < experts; e += 32) chunk_counts[chunk * experts + e] = count[e];
}

template <typename T>
__global__ void column_sum_kernel(const T* __restrict__ probs, int64_t tokens, int experts, double* __restrict__ sums) {
  __shared__ double scratch[32];
  const int e = blockIdx.x;
  double s = 0;
  for (int64_t t = threadIdx.x; t < tokens; t += blockDim.x) s += double(to_float(probs[t * experts + e]));
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) sums[e] = s;
}

// One block. chunk_counts becomes each chunk's per-expert offset (exclusive prefix sum).
__global__ void expert_totals_kernel(int32_t* __restrict__ chunk_counts, int64_t chunks, int64_t chunks_per_choice,
                                     int experts, int64_t tokens, int64_t capacity, const double* __restrict__ col_sum,
                                     double aux_weight, int64_t* __restrict__ counts,
                                     int64_t* __restrict__ first_counts, int64_t* __restrict__ dropped,
                                     double* __restrict__ aux_loss) {
  __shared__ long long scratch_i[32];
  __shared__ double scratch_d[32];
  long long drop = 0;
  double aux = 0;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    int64_t run = 0, first = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      const int32_t n = chunk_counts[c * experts + e];
      chunk_counts[c * experts + e] = int32_t(run);
      run += n;
      if (c + 1 == chunks_per_choice) first = run;
    }
    counts[e] = min(run, capacity);
    drop += max(run - capacity, int64_t(0));
    first_counts[e] = first;
    if (col_sum) aux += double(first) * col_sum[e];
  }
  drop = block_sum(drop, scratch_i);
  aux = block_sum(aux, scratch_d);
  if (threadIdx.x == 0) {
    *dropped = drop;
    *aux_loss = aux_weight > 0 ? aux_weight * double(experts) * aux / (double(tokens) * double(tokens)) : 0.0;
  }
}

template <typename T>
__global__ void assign_kernel(const int32_t* __restrict__ expert, const int32_t* __restrict__ local_rank,
                              const int32_t* __restrict__ chunk_offset, const T* __restrict__ probs, int64_t tokens,
                              int64_t assignments, int64_t chunks_per_choice, int experts, int64_t capacity,
                              uint8_t* __restrict__ kept, int32_t* __restrict__ rank, T* __restrict__ gates) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < assignments;
       a += int64_t(gridDim.x) * blockDim.x) {
    const int64_t choice = a / tokens, t = a - choice * tokens;
    const int64_t chunk = choice * chunks_per_choice + t / kChunk;
    const int e = expert[a];
    const int32_t position = local_rank[a] + chunk_offset[chunk * experts + e];
    const bool keep = position < capacity;
    kept[a] = keep ? 1 : 0;
    if (rank) rank[a] = position;
    gates[a] = keep ? probs[t * experts + e] : from_float<T>(0.f);
  }
}

template <typename T, bool kSinkhorn>
__global__ void router_backward_kernel(const T* __restrict__ probs, const int32_t* __restrict__ expert,
                                       const uint8_t* __restrict__ kept, const int64_t* __restrict__ first_counts,
                                       const T* __restrict__ dgates, int64_t tokens, int experts, int top_k,
                                       double aux_weight, T* __restrict__ dlogits) {
  const int lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (t >= tokens) return;
  const T* p = probs + t * experts;
  // d(loss)/d(p[t, e]): α·E·f_e/T, then the kept gates in choice order (cpu's order).
  auto dp = [&](int e) {
    float g = aux_weight > 0
                  ? float(aux_weight * double(experts) * double(first_counts[e]) / (double(tokens) * double(tokens)))
                  : 0.f;
    for (int c = 0; c < top_k; ++c) {
      const int64_t a = int64_t(c) * tokens + t;
      if (kept[a] && expert[a] == e) g += to_float(dgates[a]);
    }
    return g;
  };
  if (kSinkhorn) {  // gate = σ(logit): only the kept choices' logits get a gradient
    for (int e = lane; e < experts; e += 32) {
      const float s = to_float(p[e]);
      dlogits[t * experts + e] = from_float<T>(dp(e) * s * (1.f - s));
    }
    return;
  }
  float dot = 0.f;
  for (int e = lane; e < experts; e += 32) dot += dp(e) * to_float(p[e]);
  dot = warp_sum(dot);
  for (int e = lane; e < experts; e += 32) dlogits[t * experts + e] = from_float<T>(to_float(p[e]) * (dp(e) - dot));
}

// Sinkhorn in training: K, the balancing (one cooperative launch, sinkhorn.cuh) and the top_k of
// the balanced scores.
template <typename T>
void sinkhorn_route(const RouterOptions& o, const T* logits, int64_t tokens, int experts, T* probs,
                    int32_t* expert, unsigned token_blocks, cudaStream_t stream) {
  namespace sk = sinkhorn;
  constexpr const char* what = "router_forward (sinkhorn)";
  const sk::Tiling tiling = sk::tiling(tokens);
  // Cooperative: every block must be resident at once for the grid-wide barrier.
  int device = 0, multiprocessors = 0, blocks_per_multiprocessor = 0;
  ML_CUDA_CHECK(what, cudaGetDevice(&device));
  ML_CUDA_CHECK(what, cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  ML_CUDA_CHECK(what, cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_multiprocessor, sk::balance_kernel,
                                                                    sk::kThreads, 0));
  const int grid = std::min(tiling.tiles, multiprocessors * blocks_per_multiprocessor);
  ML_CHECK(grid >= 1, what, ": the balancing kernel cannot be resident");
  DeviceBuffer<double> cost(tokens * experts, what), col(experts, what);
  DeviceBuffer<double> partial(2 * int64_t(tiling.tiles) * experts, what), scales(2 * int64_t(grid) * experts, what);
  DeviceBuffer<double> rows(experts > sk::kExpertChunk ? tokens : 0, what);
  sk::cost_kernel<T><<<token_blocks, 32 * kWarpsPerBlock, 0, stream>>>(logits, tokens, experts, probs, cost.get());
  ML_CUDA_CHECK_LAUNCH("router_forward (sinkhorn cost)");
  cudaLaunchAttribute cooperative{};
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(unsigned(grid));
  config.blockDim = dim3(sk::kThreads);
  config.stream = stream;
  config.attrs = &cooperative;
  config.numAttrs = 1;
  ML_CUDA_CHECK("router_forward (sinkhorn balancing)",
                cudaLaunchKernelEx(&config, sk::balance_kernel, cost.get(), tokens, experts, tiling.tile_tokens,
                                   tiling.tiles, int64_t(o.sinkhorn_max_iter), o.sinkhorn_tol, partial.get(),
                                   scales.get(), rows.get(), col.get()));
  balanced_topk_kernel<<<token_blocks, 32 * kWarpsPerBlock, 0, stream>>>(cost.get(), col.get(), tokens, experts,
                                                                        int(o.top_k), expert);
  ML_CUDA_CHECK_LAUNCH("router_forward (sinkhorn top-k)");
}

}  // namespace

template <typename T>
void route_forward(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                   Routing& r, cudaStream_t stream) {
  ML_CHECK(experts >= 1 && experts <= kMaxExperts, "router (cuda): experts must be in [1, ", kMaxExperts, "], got ",
           experts);
  ML_CHECK(o.top_k >= 1 && o.top_k <= experts, "router: top_k must be in [1, ", experts, "], got ", o.top_k);
  const int64_t k = o.top_k, assignments = k * tokens;
  ML_CHECK(tokens >= 0 && assignments < int64_t(INT_MAX), "router (cuda): ", assignments, " assignments exceed int32");
  r.tokens = tokens, r.experts = experts, r.top_k = k;
  r.capacity = o.capacity(tokens, experts);
  const int E = int(experts);
  const bool switch_router = o.kind == RouterKind::Switch;
  const int64_t chunks_per_choice = std::max<int64_t>((tokens + kChunk - 1) / kChunk, 1);
  const int64_t chunks = k * chunks_per_choice;
  ML_CHECK(chunks <= 0x7fffffff, "router (cuda): too many chunks");
  DeviceBuffer<int32_t> local_rank(assignments, "router_forward");
  DeviceBuffer<int32_t> chunk_counts(chunks * experts, "router_forward");
  DeviceBuffer<double> col_sum(experts, "router_forward");
  const bool aux = switch_router && o.aux_weight > 0 && tokens > 0;
  if (tokens > 0) {
    const int64_t blocks = (tokens + kWarpsPerBlock - 1) / kWarpsPerBlock;
    ML_CHECK(blocks <= 0x7fffffff, "router_forward: ", tokens, " tokens exceed one launch");
    const unsigned grid = unsigned(blocks), threads = 32 * kWarpsPerBlock;
    if (switch_router) {
      probs_topk_kernel<T, true><<<grid, threads, 0, stream>>>(logits, tokens, E, int(k), probs, r.expert, nullptr);
    } else if (!o.training) {
      probs_topk_kernel<T, false><<<grid, threads, 0, stream>>>(logits, tokens, E, int(k), probs, r.expert, nullptr);
    } else {
      sinkhorn_route<T>(o, logits, tokens, E, probs, r.expert, grid, stream);
    }
    ML_CUDA_CHECK_LAUNCH("router_forward (probabilities/top-k)");
  }
  // With no tokens, every chunk is empty: the passes below still zero the outputs.
  chunk_rank_kernel<<<unsigned(chunks), 32, size_t(E) * sizeof(int32_t), stream>>>(
      r.expert, tokens, chunks_per_choice, E, local_rank.get(), chunk_counts.get());
  ML_CUDA_CHECK_LAUNCH("router_forward (ranks)");
  if (aux) {
    column_sum_kernel<T><<<unsigned(E), 256, 0, stream>>>(probs, tokens, E, col_sum.get());
    ML_CUDA_CHECK_LAUNCH("router_forward (column sums)");
  }
  expert_totals_kernel<<<1, 256, 0, stream>>>(chunk_counts.get(), chunks, chunks_per_choice, E, tokens, r.capacity,
                                              aux ? col_sum.get() : nullptr, aux ? o.aux_weight : 0.0, r.counts,
                                              r.first_counts, r.dropped, r.aux_loss);
  ML_CUDA_CHECK_LAUNCH("router_forward (totals)");
  if (assignments > 0) {
    assign_kernel<T><<<blocks_for(assignments, 256), 256, 0, stream>>>(r.expert, local_rank.get(), chunk_counts.get(),
                                                                       probs, tokens, assignments, chunks_per_choice,
                                                                       E, r.capacity, r.kept, r.rank, gates);
    ML_CUDA_CHECK_LAUNCH("router_forward (capacity)");
  }
}

template <typename T>
void route_backward(const RouterOptions& o, const T* probs, const Routing& r, const T* dgates, T* dlogits,
                    cudaStream_t stream) {
  if (r.tokens <= 0) return;
  const int64_t blocks = (r.tokens + kWarpsPerBlock - 1) / kWarpsPerBlock;
  ML_CHECK(blocks <= 0x7fffffff, "router_backward: ", r.tokens, " tokens exceed one launch");
  const unsigned grid = unsigned(blocks), threads = 32 * kWarpsPerBlock;
  if (o.kind == RouterKind::Switch) {
    router_backward_kernel<T, false><<<grid, threads, 0, stream>>>(probs, r.expert, r.kept, r.first_counts, dgates,
                                                                   r.tokens, int(r.experts), int(r.top_k),
                                                                   o.aux_weight, dlogits);
  } else {
    router_backward_kernel<T, true><<<grid, threads, 0, stream>>>(probs, r.expert, r.kept, r.first_counts, dgates,
                                                                  r.tokens, int(r.experts), int(r.top_k), 0.0,
                                                                  dlogits);
  }
  ML_CUDA_CHECK_LAUNCH("router_backward");
}

template <typename T>
void route_choices(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                   int32_t* expert, cudaStream_t stream) {
  ML_CHECK(experts >= 1 && experts <= kMaxExperts, "router (cuda): experts must be in [1, ", kMaxExperts, "], got ",
           experts);
  ML_CHECK(o.top_k >= 1 && o.top_k <= experts, "router: top_k must be in [1, ", experts, "], got ", o.top_k);
  ML_CHECK(tokens >= 0 && o.top_k * tokens < int64_t(INT_MAX), "router (cuda): ", o.top_k * tokens,
           " assignments exceed int32");
  if (tokens == 0) return;
  const unsigned grid = unsigned((tokens + kWarpsPerBlock - 1) / kWarpsPerBlock), threads = 32 * kWarpsPerBlock;
  const auto kernel = o.kind == RouterKind::Switch ? probs_topk_kernel<T, true> : probs_topk_kernel<T, false>;
  launch_chained("route_choices", kernel, dim3(grid), dim3(threads), 0, stream, logits, tokens, int(experts),
                 int(o.top_k), probs, expert, gates);
}

#define ML_INSTANTIATE(T)                                                                                  \
  template void route_forward<T>(const RouterOptions&, const T*, int64_t, int64_t, T*, T*, Routing&, \
                                 cudaStream_t);                                                           \
  template void route_backward<T>(const RouterOptions&, const T*, const Routing&, const T*, T*,     \
                                  cudaStream_t);                                                          \
  template void route_choices<T>(const RouterOptions&, const T*, int64_t, int64_t, T*, T*, int32_t*,    \
                                 cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
