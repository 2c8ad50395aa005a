// What the warpgroup-MMA attention kernels (hopper_forward.cuh, hopper_backward.cuh) share:
// blocks of two warpgroups, each owning 64 rows (queries, or keys in dk/dv); tiles of 64 rows
// of 64 bf16 in the 128-byte swizzle (core/wgmma.cuh), loaded by cp.async; the two product
// shapes of flash attention on those tiles. Included by cuda.cu only.
#pragma once
#include "../../core/wgmma.cuh"
#include "tensor_core.cuh"

namespace ml::cuda::tensor_core::hopper {

constexpr int kGroups = 2;                         // warpgroups a block
constexpr int kBlockRows = 64 * kGroups;           // rows a block owns
constexpr int kThreads = 128 * kGroups;
constexpr int kTile = 64;                          // rows of a streamed tile
constexpr int kTileBytes = kTile * wgmma::kRowBytes;

// The block's dynamic shared memory from its first swizzle atom (callers ask for one atom more).
__device__ __forceinline__ unsigned char* aligned_shared(unsigned char* raw) {
  return raw + ((wgmma::kAtomBytes - wgmma::shared_address(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes);
}

// Rows [first, first + kRowsLoaded) of a (len, stride) bf16 view into a swizzled tile through
// cp.async by the block's first kLoaders threads; rows past len are zero-filled (source size 0,
// the address that of the view's first element).
template <int kRowsLoaded, int kLoaders = kThreads>
__device__ __forceinline__ void load_swizzled_async(unsigned char* tile, const bf16* src, int64_t stride,
                                                    int64_t first, int64_t len) {
  constexpr int kChunksPerRow = kDim / 8;  // 16-byte chunks
  constexpr int kRowsPerPass = kLoaders / kChunksPerRow;
  if (threadIdx.x >= kLoaders) return;
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

// src[first, first + kTile) into dst through cp.async by the first kTile threads; zero past len.
__device__ __forceinline__ void load_floats_async(float* dst, const float* src, int64_t first, int64_t len) {
  if (threadIdx.x >= kTile) return;
  const bool inside = first + threadIdx.x < len;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(wgmma::shared_address(dst + threadIdx.x)),
               "l"(inside ? src + first + threadIdx.x : src), "r"(inside ? 4 : 0));
}

// Where a thread of a block owning queries (the forward, dq) stands. Query blocks run last
// first: under the causal mask later blocks see more keys, so the long blocks start first.
struct QueryBlock {
  int64_t qb, h, b, g_kv, q_stride, kv_stride;
  int group, warp, g, t;  // warpgroup; warp in it; lane = 4·g + t
  int64_t first_row;      // the warpgroup's first query
  int64_t key_tiles;      // tiles of keys the block's queries see: below min(its end, len)
  __device__ explicit QueryBlock(const Args& a)
      : qb((a.len + kBlockRows - 1) / kBlockRows - 1 - blockIdx.x), h(blockIdx.y), b(blockIdx.z),
        g_kv(h / (a.heads / a.kv_heads)), q_stride(a.heads * kDim), kv_stride(a.kv_heads * kDim),
        group(threadIdx.x / 128), warp((threadIdx.x / 32) % 4), g((threadIdx.x & 31) / 4), t(threadIdx.x % 4),
        first_row(qb * kBlockRows + group * 64) {
    const int64_t end = (qb + 1) * kBlockRows, seen = end < a.len ? end : a.len;
    key_tiles = (seen + kTile - 1) / kTile;
  }
};

#ifdef ML_WGMMA_AVAILABLE

// The double buffer every kernel here runs: before step i, starts loading step i + 1 (if there
// is one) into the other buffer (load(step, buffer)), then waits for step i's and makes it
// visible to every thread and to wgmma.
template <typename Load>
__device__ __forceinline__ void next_step(int64_t i, int64_t steps, Load&& load) {
  if (i + 1 < steps) {
    load(i + 1, int((i + 1) & 1));
    async_commit();
    async_wait<1>();
  } else {
    async_wait<0>();
  }
  wgmma::fence_shared_for_async();
  __syncthreads();
}

// acc = a · bᵀ over the head dimension: the warpgroup's 64 rows of swizzled tile a against the
// 64 rows of tile b (scores Q·Kᵀ, dO·Vᵀ, or transposed, K·Qᵀ, V·dOᵀ). Issued, not committed.
__device__ __forceinline__ void multiply_rows(float (&acc)[kDimTiles][4], const unsigned char* a,
                                              const unsigned char* b) {
  wgmma::fence();
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk)
    wgmma::mma_shared(acc, wgmma::descriptor(a + kk * 32), wgmma::descriptor(b + kk * 32), kk > 0);
}

// Accumulators (64 × 64, bf16-rounded) as the four k-steps of A fragments of a product.
__device__ __forceinline__ void to_fragments(uint32_t (&f)[kTile / 16][4], const float (&acc)[kTile / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    f[kk][0] = pack(acc[2 * kk][0], acc[2 * kk][1]), f[kk][1] = pack(acc[2 * kk][2], acc[2 * kk][3]);
    f[kk][2] = pack(acc[2 * kk + 1][0], acc[2 * kk + 1][1]), f[kk][3] = pack(acc[2 * kk + 1][2], acc[2 * kk + 1][3]);
  }
}

// acc += f · tile: f a 64 × 64 product's fragments (made before this call: else the compiler
// fences each product), the tile's 64 rows its k's and their 64 columns the outputs (P·V,
// dS·K, Pᵀ·dO, dSᵀ·Q). Issued, not committed.
__device__ __forceinline__ void accumulate_product(float (&acc)[kDimTiles][4], const uint32_t (&f)[kTile / 16][4],
                                                   const unsigned char* tile) {
  wgmma::pin(acc);
  wgmma::fence();
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
    wgmma::mma_registers_transposed_b(acc, f[kk], wgmma::descriptor(tile + kk * 16 * wgmma::kRowBytes));
}

#endif  // ML_WGMMA_AVAILABLE

}  // namespace ml::cuda::tensor_core::hopper
