// The bf16, head_dim 64 backward on Hopper's warpgroup MMA, as the mma.sync one is split
// (tensor_core.cuh): one kernel owns keys and writes dk, dv; one owns queries and writes dq.
// Each output has one writer and every sum a fixed order: deterministic, no atomics. A
// warpgroup owns 64 rows (one a block for dk/dv, two for dq: hopper_tiles.cuh); the other
// side streams through double-buffered swizzled tiles. Per tile a warpgroup issues both score
// products from shared memory (Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for dk/dv; S = Q·Kᵀ and dP = dO·Vᵀ
// for dq), recomputes the probabilities from lse, and accumulates with them (or dS) as A
// fragments from registers. A warpgroup also multiplies tiles wholly masked for it (no branch
// around wgmma: see hopper_forward.cuh). Included by cuda.cu only.
#pragma once
#include "hopper_tiles.cuh"

namespace ml::cuda::tensor_core {

namespace hopper {
// dk/dv: one warpgroup a block, three blocks an SM (154 registers; two warpgroups a block ran
// 1.23× slower at one block an SM, three 1.06×: bench/NOTES-attention.md). Its K and V, and
// two buffers of a query tile: Q, dO, and lse and D as floats.
constexpr int kDkdvThreads = 128;
constexpr int kDkdvKeys = 64;
constexpr size_t kDkdvShared = 2 * kTileBytes + 2 * (2 * kTileBytes + 2 * kTile * sizeof(float)) + wgmma::kAtomBytes;
// dq: Q and dO of both warpgroups; two buffers of K and V.
constexpr size_t kDqShared = 8 * kTileBytes + wgmma::kAtomBytes;
}  // namespace hopper

// dk, dv of 64 keys over the query tiles of every head of their group that may see them. Rows
// of the accumulators are keys, columns queries.
__global__ void __launch_bounds__(hopper::kDkdvThreads, 3) hopper_dkdv_kernel(Args a) {
#ifdef ML_WGMMA_AVAILABLE
  using namespace hopper;
  constexpr int kLoaders = kDkdvThreads;
  extern __shared__ unsigned char raw[];
  unsigned char* base = aligned_shared(raw);
  unsigned char *Ks = base, *Vs = base + kTileBytes;
  auto Qs = [&](int i) { return base + (2 + 2 * i) * kTileBytes; };
  auto dOs = [&](int i) { return base + (3 + 2 * i) * kTileBytes; };
  float* stats = reinterpret_cast<float*>(base + 6 * kTileBytes);
  auto lse_s = [&](int i) { return stats + 2 * i * kTile; };
  auto D_s = [&](int i) { return stats + (2 * i + 1) * kTile; };
  const int64_t kb = blockIdx.x, g_kv = blockIdx.y, b = blockIdx.z, group_size = a.heads / a.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
  const int64_t q_stride = a.heads * kDim, kv_stride = a.kv_heads * kDim;
  const int64_t kv_offset = (b * a.len * a.kv_heads + g_kv) * kDim;
  const int64_t first_key = kb * kDkdvKeys;
  const int64_t key0 = first_key + warp * 16 + g;  // this thread's keys: key0, key0 + 8
  const int64_t q_first = kb * kDkdvKeys / kTile;  // the first query tile that sees a key
  const int64_t q_tiles = (a.len + kTile - 1) / kTile, per_head = q_tiles - q_first;
  const int64_t steps = group_size * per_head;
  // Step i: head g_kv · group_size + i / per_head, query tile q_first + i % per_head.
  auto load_step = [&](int64_t i, int buf) {
    const int64_t h = g_kv * group_size + i / per_head, qt = q_first + i % per_head;
    const int64_t q_offset = (b * a.len * a.heads + h) * kDim, row_stats = (b * a.heads + h) * a.len;
    load_swizzled_async<kTile, kLoaders>(Qs(buf), a.q + q_offset, q_stride, qt * kTile, a.len);
    load_swizzled_async<kTile, kLoaders>(dOs(buf), a.dout + q_offset, q_stride, qt * kTile, a.len);
    load_floats_async(lse_s(buf), a.lse + row_stats, qt * kTile, a.len);
    load_floats_async(D_s(buf), a.D + row_stats, qt * kTile, a.len);
  };
  load_swizzled_async<kDkdvKeys, kLoaders>(Ks, a.k + kv_offset, kv_stride, kb * kDkdvKeys, a.len);
  load_swizzled_async<kDkdvKeys, kLoaders>(Vs, a.v + kv_offset, kv_stride, kb * kDkdvKeys, a.len);
  load_step(0, 0);
  async_commit();
  float dk[kDimTiles][4], dv[kDimTiles][4], s[kDimTiles][4], dp[kDimTiles][4];
  zero(dk);
  zero(dv);
  zero(s);  // every step's first k-step overwrites both; zeroed once so none is read undefined
  zero(dp);
  const float scale2 = a.scale * kLog2e;
  for (int64_t i = 0; i < steps; ++i) {
    const int buf = int(i & 1);
    next_step(i, steps, load_step);
    const int64_t qt = q_first + i % per_head;
    multiply_rows(s, Ks, Qs(buf));    // Sᵀ: keys × queries
    multiply_rows(dp, Vs, dOs(buf));  // dPᵀ
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(s);
    wgmma::pin(dp);
    // A query sees a key at or before it; queries past len see none.
    const bool masked = qt * kTile < first_key + 63 || qt * kTile + kTile > a.len;
    const int first0 = int(key0 - qt * kTile), first1 = first0 + 8;  // the first query each key reaches
    const int valid = int(a.len - qt * kTile < kTile ? a.len - qt * kTile : kTile);
    const float *lse = lse_s(buf), *D = D_s(buf);
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = j * 8 + 2 * t + (e & 1);
        const bool seen = !masked || (col >= (e < 2 ? first0 : first1) && col < valid);
        s[j][e] = seen ? exp2_approx(fmaf(s[j][e], scale2, -lse[col] * kLog2e)) : 0.f;  // Pᵀ
        dp[j][e] = s[j][e] * (dp[j][e] - D[col]);                                       // dSᵀ
      }
    uint32_t pf[kTile / 16][4], dsf[kTile / 16][4];
    to_fragments(pf, s);
    to_fragments(dsf, dp);
    accumulate_product(dv, pf, dOs(buf));  // += Pᵀ·dO
    accumulate_product(dk, dsf, Qs(buf));  // += dSᵀ·Q
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(dv);
    wgmma::pin(dk);
    __syncthreads();  // the buffer is refilled two steps on
  }
  store_rows(a.dk + kv_offset, kv_stride, first_key + warp * 16, a.len, dk, a.scale, a.scale);
  store_rows(a.dv + kv_offset, kv_stride, first_key + warp * 16, a.len, dv, 1.f, 1.f);
#else
  __trap();  // launched only where the host saw a Hopper build (on_hopper in cuda.cu)
#endif
}

// dq of 128 queries (64 per warpgroup) over the key tiles at or before them.
__global__ void __launch_bounds__(hopper::kThreads, 2) hopper_dq_kernel(Args a) {
#ifdef ML_WGMMA_AVAILABLE
  using namespace hopper;
  extern __shared__ unsigned char raw[];
  unsigned char* base = aligned_shared(raw);
  unsigned char *Qs = base, *dOs = base + 2 * kTileBytes;  // warpgroup w's queries: tile w of each
  auto Ks = [&](int i) { return base + (4 + 2 * i) * kTileBytes; };
  auto Vs = [&](int i) { return base + (5 + 2 * i) * kTileBytes; };
  const QueryBlock at(a);
  const int64_t q_offset = (at.b * a.len * a.heads + at.h) * kDim;
  const int64_t kv_offset = (at.b * a.len * a.kv_heads + at.g_kv) * kDim, row_stats = (at.b * a.heads + at.h) * a.len;
  auto load_keys = [&](int64_t kt, int buf) {
    load_swizzled_async<kTile>(Ks(buf), a.k + kv_offset, at.kv_stride, kt * kTile, a.len);
    load_swizzled_async<kTile>(Vs(buf), a.v + kv_offset, at.kv_stride, kt * kTile, a.len);
  };
  load_swizzled_async<kBlockRows>(Qs, a.q + q_offset, at.q_stride, at.qb * kBlockRows, a.len);
  load_swizzled_async<kBlockRows>(dOs, a.dout + q_offset, at.q_stride, at.qb * kBlockRows, a.len);
  load_keys(0, 0);
  async_commit();
  const int64_t row0 = at.first_row + at.warp * 16 + at.g, row1 = row0 + 8;  // this thread's two queries
  const float lse0 = row0 < a.len ? a.lse[row_stats + row0] * kLog2e : 0.f;
  const float lse1 = row1 < a.len ? a.lse[row_stats + row1] * kLog2e : 0.f;
  const float D0 = row0 < a.len ? a.D[row_stats + row0] : 0.f, D1 = row1 < a.len ? a.D[row_stats + row1] : 0.f;
  float dq[kDimTiles][4], s[kDimTiles][4], dp[kDimTiles][4];
  zero(dq);
  zero(s);  // every tile's first k-step overwrites both; zeroed once so none is read undefined
  zero(dp);
  const float scale2 = a.scale * kLog2e;
  const unsigned char *my_q = Qs + at.group * kTileBytes, *my_do = dOs + at.group * kTileBytes;
  for (int64_t kt = 0; kt < at.key_tiles; ++kt) {
    const int buf = int(kt & 1);
    next_step(kt, at.key_tiles, load_keys);
    multiply_rows(s, my_q, Ks(buf));     // S
    multiply_rows(dp, my_do, Vs(buf));   // dP
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(s);
    wgmma::pin(dp);
    const bool masked = kt * kTile + kTile - 1 > at.first_row;  // some key after some query
    const int last0 = int(row0 - kt * kTile), last1 = last0 + 8;  // the last key each query sees
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool seen = !masked || j * 8 + 2 * at.t + (e & 1) <= (e < 2 ? last0 : last1);
        const float p = seen ? exp2_approx(fmaf(s[j][e], scale2, -(e < 2 ? lse0 : lse1))) : 0.f;
        dp[j][e] = p * (dp[j][e] - (e < 2 ? D0 : D1));  // dS
      }
    uint32_t dsf[kTile / 16][4];
    to_fragments(dsf, dp);
    accumulate_product(dq, dsf, Ks(buf));  // += dS·K
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(dq);
    __syncthreads();  // the buffer is refilled two tiles on
  }
  store_rows(a.dq + q_offset, at.q_stride, at.first_row + at.warp * 16, a.len, dq, a.scale, a.scale);
#else
  __trap();  // launched only where the host saw a Hopper build (on_hopper in cuda.cu)
#endif
}

}  // namespace ml::cuda::tensor_core
