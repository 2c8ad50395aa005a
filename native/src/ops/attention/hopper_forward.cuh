// The bf16, head_dim 64 forward on Hopper's warpgroup MMA (core/wgmma.cuh): a block of two
// warpgroups owns 128 queries, 64 each; key and value tiles of 64 rows stream through a
// double buffer of swizzled shared tiles (cp.async). Per key tile a warpgroup computes its
// 64 × 64 scores with Q and K both read by the tensor cores from shared memory, runs the
// online softmax on the accumulators (one FMA and one MUFU exp2 per score, the causal mask
// only on tiles that need it), and adds P·V with P straight from its registers. Two blocks
// fit an SM, so one warpgroup's softmax overlaps another's products (hopper_tiles.cuh).
//
// Measured (bench/NOTES-attention.md): 64 or 128-key tiles, one or two warpgroups a block,
// 2 to 4 buffers, and P·V overlapping the next tile's softmax inside a warpgroup all ran
// within 5% of each other; this is the simplest of the fastest. The first warpgroup also
// multiplies the block's last key tile, wholly after its queries and masked: a branch around
// wgmma makes the compiler serialise every wgmma of the kernel. Included by cuda.cu only.
#pragma once
#include "hopper_tiles.cuh"

namespace ml::cuda::tensor_core {

namespace hopper {
// Q (two tiles), two buffers of K and V, and room to align the start to a swizzle atom.
constexpr size_t kForwardShared = 6 * kTileBytes + wgmma::kAtomBytes;
}  // namespace hopper

__global__ void __launch_bounds__(hopper::kThreads, 2) hopper_forward_kernel(Args a) {
#ifdef ML_WGMMA_AVAILABLE
  using namespace hopper;
  constexpr int kKeyTiles8 = kTile / 8;  // 8-wide accumulator tiles of a row of scores
  extern __shared__ unsigned char raw[];
  unsigned char* base = aligned_shared(raw);
  unsigned char* Qs = base;  // the queries of warpgroup w: tile w
  auto Ks = [&](int i) { return base + (2 + 2 * i) * kTileBytes; };
  auto Vs = [&](int i) { return base + (3 + 2 * i) * kTileBytes; };
  const QueryBlock at(a);
  const bf16* qh = a.q + (at.b * a.len * a.heads + at.h) * kDim;
  const bf16* kg = a.k + (at.b * a.len * a.kv_heads + at.g_kv) * kDim;
  const bf16* vg = a.v + (at.b * a.len * a.kv_heads + at.g_kv) * kDim;
  auto load_keys = [&](int64_t kt, int buf) {
    load_swizzled_async<kTile>(Ks(buf), kg, at.kv_stride, kt * kTile, a.len);
    load_swizzled_async<kTile>(Vs(buf), vg, at.kv_stride, kt * kTile, a.len);
  };
  load_swizzled_async<kBlockRows>(Qs, qh, at.q_stride, at.qb * kBlockRows, a.len);
  load_keys(0, 0);
  async_commit();
  const int64_t row0 = at.first_row + at.warp * 16 + at.g, row1 = row0 + 8;  // this thread's two query rows
  float o[kDimTiles][4], s[kKeyTiles8][4];
  zero(o);
  zero(s);  // every tile's first k-step overwrites the scores; zeroed once so none is read undefined
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float scale2 = a.scale * kLog2e;  // exponents in base 2
  const unsigned char* my_q = Qs + at.group * kTileBytes;
  for (int64_t kt = 0; kt < at.key_tiles; ++kt) {
    const int buf = int(kt & 1);
    next_step(kt, at.key_tiles, load_keys);
    multiply_rows(s, my_q, Ks(buf));
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(s);
    if (kt * kTile + kTile - 1 > at.first_row) {  // some key after some query: mask (32-bit offsets)
      const int last0 = int(row0 - kt * kTile), last1 = last0 + 8;  // the last key each row sees
#pragma unroll
      for (int j = 0; j < kKeyTiles8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (j * 8 + 2 * at.t + (e & 1) > (e < 2 ? last0 : last1)) s[j][e] = -INFINITY;
    }
    float max0 = -INFINITY, max1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeyTiles8; ++j) {
      max0 = fmaxf(max0, fmaxf(s[j][0], s[j][1]));
      max1 = fmaxf(max1, fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int o_ = 1; o_ <= 2; o_ <<= 1) {
      max0 = fmaxf(max0, __shfl_xor_sync(0xffffffffu, max0, o_));
      max1 = fmaxf(max1, __shfl_xor_sync(0xffffffffu, max1, o_));
    }
    // Running maxima in scaled base-2 units; p = 2^(s·scale2 − m) as one FMA and one MUFU op.
    const float new0 = fmaxf(m0, max0 * scale2), new1 = fmaxf(m1, max1 * scale2);
    const float base0 = new0 == -INFINITY ? 0.f : new0, base1 = new1 == -INFINITY ? 0.f : new1;
    const float alpha0 = exp2_approx(m0 - base0), alpha1 = exp2_approx(m1 - base1);
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int j = 0; j < kKeyTiles8; ++j) {
      s[j][0] = exp2_approx(fmaf(s[j][0], scale2, -base0)), s[j][1] = exp2_approx(fmaf(s[j][1], scale2, -base0));
      s[j][2] = exp2_approx(fmaf(s[j][2], scale2, -base1)), s[j][3] = exp2_approx(fmaf(s[j][3], scale2, -base1));
      sum0 += s[j][0] + s[j][1], sum1 += s[j][2] + s[j][3];
    }
    l0 = l0 * alpha0 + sum0, l1 = l1 * alpha1 + sum1;
    m0 = new0, m1 = new1;
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) o[j][0] *= alpha0, o[j][1] *= alpha0, o[j][2] *= alpha1, o[j][3] *= alpha1;
    uint32_t p[kTile / 16][4];
    to_fragments(p, s);
    accumulate_product(o, p, Vs(buf));
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(o);
    __syncthreads();  // the buffer is refilled two tiles on
  }
#pragma unroll
  for (int o_ = 1; o_ <= 2; o_ <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o_);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o_);
  }
  store_rows(a.out_w + (at.b * a.len * a.heads + at.h) * kDim, at.q_stride, at.first_row + at.warp * 16, a.len, o,
             1.f / l0, 1.f / l1);
  if (at.t == 0) {
    float* lse = a.lse_w + (at.b * a.heads + at.h) * a.len;
    if (row0 < a.len) lse[row0] = (m0 + log2f(l0)) / kLog2e;
    if (row1 < a.len) lse[row1] = (m1 + log2f(l1)) / kLog2e;
  }
#else
  __trap();  // launched only where the host saw a Hopper build (on_hopper in cuda.cu)
#endif
}

}  // namespace ml::cuda::tensor_core
