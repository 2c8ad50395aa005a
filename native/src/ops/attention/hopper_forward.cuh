// The bf16, head_dim 64 forward on Hopper's warpgroup MMA (core/wgmma.cuh): a block of two
// warpgroups owns 128 queries, 64 each; key and value tiles of 64 rows stream through a
// double buffer of swizzled shared tiles (cp.async). Per key tile a warpgroup computes its
// 64 × 64 scores with Q and K both read by the tensor cores from shared memory, runs the
// online softmax on the accumulators (one FMA and one MUFU exp2 per score, the causal mask
// only on tiles that need it), and adds P·V with P straight from its registers. Two blocks
// fit an SM, so one warpgroup's softmax overlaps another's products.
//
// Measured (bench/NOTES-attention.md): 64 or 128-key tiles, one or two warpgroups a block,
// 2 to 4 buffers, and P·V overlapping the next tile's softmax inside a warpgroup all ran
// within 5% of each other; this is the simplest of the fastest. The first warpgroup also
// multiplies the block's last key tile, wholly after its queries and masked: a branch around
// wgmma makes the compiler serialise every wgmma of the kernel. Included by cuda.cu only.
#pragma once
#include "../../core/wgmma.cuh"
#include "tensor_core.cuh"

namespace ml::cuda::tensor_core {

namespace hopper {
constexpr int kGroups = 2;                            // warpgroups a block
constexpr int kQueryRows = 64 * kGroups;
constexpr int kThreads = 128 * kGroups;
constexpr int kKeys = 64;                             // rows of a key or value tile
constexpr int kTileBytes = 64 * wgmma::kRowBytes;     // 64 rows of 64 bf16
// Q (two tiles), two buffers of K and V, and room to align the start to a swizzle atom.
constexpr size_t kShared = 6 * kTileBytes + wgmma::kAtomBytes;
}  // namespace hopper

// Rows [first, first + kRowsLoaded) of a (len, stride) bf16 view into a swizzled tile through
// cp.async by the block's threads; rows past len are zero-filled (source size 0, the address
// that of the view's first element).
template <int kRowsLoaded>
__device__ __forceinline__ void load_swizzled_async(unsigned char* tile, const bf16* src, int64_t stride,
                                                    int64_t first, int64_t len) {
  constexpr int kChunksPerRow = kDim / 8;  // 16-byte chunks
  constexpr int kRowsPerPass = hopper::kThreads / kChunksPerRow;
  static_assert(kRowsLoaded % kRowsPerPass == 0 && kRowsPerPass % 8 == 0, "whole passes of whole swizzle atoms");
  // A thread copies the same chunk of rows r, r + kRowsPerPass, …: one swizzled offset, shifted.
  const int r = threadIdx.x / kChunksPerRow, c = threadIdx.x % kChunksPerRow;
  const uint32_t to = wgmma::shared_address(tile + wgmma::swizzled(r, c));
  const bf16* from = src + (first + r) * stride + c * 8;
#pragma unroll
  for (int pass = 0; pass < kRowsLoaded / kRowsPerPass; ++pass) {
    const bool inside = first + r + pass * kRowsPerPass < len;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to + pass * kRowsPerPass * wgmma::kRowBytes),
                 "l"(inside ? from + pass * kRowsPerPass * stride : src), "r"(inside ? 16 : 0));
  }
}

// Query blocks run last first, as in forward_kernel.
__global__ void __launch_bounds__(hopper::kThreads, 2) hopper_forward_kernel(Args a) {
#ifdef ML_WGMMA_AVAILABLE
  using namespace hopper;
  constexpr int kKeyTiles8 = kKeys / 8;  // 8-wide accumulator tiles of a row of scores
  extern __shared__ unsigned char raw[];
  unsigned char* base =
      raw + ((wgmma::kAtomBytes - wgmma::shared_address(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes);
  unsigned char* Qs = base;  // the queries of warpgroup w: tile w
  auto Ks = [&](int i) { return base + (2 + 2 * i) * kTileBytes; };
  auto Vs = [&](int i) { return base + (3 + 2 * i) * kTileBytes; };
  const int64_t query_blocks = (a.len + kQueryRows - 1) / kQueryRows;
  const int64_t qb = query_blocks - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t g_kv = h / (a.heads / a.kv_heads);
  const int group = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x & 31, g = lane / 4,
            t = lane % 4;
  const int64_t q_stride = a.heads * kDim, kv_stride = a.kv_heads * kDim;
  const bf16* qh = a.q + (b * a.len * a.heads + h) * kDim;
  const bf16* kg = a.k + (b * a.len * a.kv_heads + g_kv) * kDim;
  const bf16* vg = a.v + (b * a.len * a.kv_heads + g_kv) * kDim;
  const int64_t first_row = qb * kQueryRows + group * 64;  // this warpgroup's first query
  // Keys the block's queries see: below min(the block's end, len).
  const int64_t block_end = (qb + 1) * kQueryRows, seen = block_end < a.len ? block_end : a.len;
  const int64_t key_tiles = (seen + kKeys - 1) / kKeys;
  load_swizzled_async<kQueryRows>(Qs, qh, q_stride, qb * kQueryRows, a.len);
  load_swizzled_async<kKeys>(Ks(0), kg, kv_stride, 0, a.len);
  load_swizzled_async<kKeys>(Vs(0), vg, kv_stride, 0, a.len);
  async_commit();
  const int64_t row0 = first_row + warp * 16 + g, row1 = row0 + 8;  // this thread's two query rows
  float o[kDimTiles][4], s[kKeyTiles8][4];
  zero(o);
  zero(s);  // every tile's first k-step overwrites the scores; zeroed once so none is read undefined
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float scale2 = a.scale * kLog2e;  // exponents in base 2
  const unsigned char* my_q = Qs + group * kTileBytes;
  for (int64_t kt = 0; kt < key_tiles; ++kt) {
    const int buf = int(kt & 1);
    if (kt + 1 < key_tiles) {
      load_swizzled_async<kKeys>(Ks(buf ^ 1), kg, kv_stride, (kt + 1) * kKeys, a.len);
      load_swizzled_async<kKeys>(Vs(buf ^ 1), vg, kv_stride, (kt + 1) * kKeys, a.len);
      async_commit();
      async_wait<1>();
    } else {
      async_wait<0>();
    }
    wgmma::fence_shared_for_async();
    __syncthreads();
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma::mma_shared(s, wgmma::descriptor(my_q + kk * 32), wgmma::descriptor(Ks(buf) + kk * 32), kk > 0);
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::pin(s);
    if (kt * kKeys + kKeys - 1 > first_row) {  // some key after some query: mask (32-bit offsets)
      const int last0 = int(row0 - kt * kKeys), last1 = last0 + 8;  // the last key each row sees
#pragma unroll
      for (int j = 0; j < kKeyTiles8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (j * 8 + 2 * t + (e & 1) > (e < 2 ? last0 : last1)) s[j][e] = -INFINITY;
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
    // P as A fragments, all made before the fence (else the compiler fences each product).
    uint32_t p[kKeys / 16][4];
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      p[kk][0] = pack(s[2 * kk][0], s[2 * kk][1]), p[kk][1] = pack(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), p[kk][3] = pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    wgmma::pin(o);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk)
      wgmma::mma_registers_transposed_b(o, p[kk], wgmma::descriptor(Vs(buf) + kk * 16 * wgmma::kRowBytes));
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
  store_rows(a.out_w + (b * a.len * a.heads + h) * kDim, q_stride, first_row + warp * 16, a.len, o, 1.f / l0,
             1.f / l1);
  if (t == 0) {
    float* lse = a.lse_w + (b * a.heads + h) * a.len;
    if (row0 < a.len) lse[row0] = (m0 + log2f(l0)) / kLog2e;
    if (row1 < a.len) lse[row1] = (m1 + log2f(l1)) / kLog2e;
  }
#else
  __trap();  // launched only where the host saw a Hopper build (on_hopper in cuda.cu)
#endif
}

}  // namespace ml::cuda::tensor_core
