// Hopper warpgroup MMA (wgmma, sm_90a): the 128 threads of a warpgroup multiply a 64-row A by
// a shared-memory B into fp32 accumulators spread over their registers, asynchronously. Only
// the shape the kernels use is wrapped: m64n64k16, bf16 inputs, fp32 accumulators.
//
// Shared tiles are rows of 64 bf16 (128 bytes) in the 128-byte swizzle: the 16-byte chunk c of
// row r sits at chunk c ^ (r % 8), and every tile starts on 1024 bytes (8 rows, one swizzle
// atom). One such tile serves as a K-major operand (rows are M or N, the 64 columns are K:
// Q and K in Q·Kᵀ) or, read transposed, as an MN-major B (rows are K, columns N: V in P·V).
// Either way the descriptor's stride between 8-row groups is 1024 bytes; a k-step of 16
// moves the start 32 bytes along a row (K-major) or 16 rows down (MN-major).
//
// Accumulator layout (per warp w of the warpgroup, lane = 4·g + t): acc[j][0..1] are row
// 16·w + g, columns 8·j + 2·t and + 1; acc[j][2..3] the same columns of row 16·w + g + 8 — the
// layout of mma.sync's m16n8 accumulators, and rounded to bf16 pairwise, an A operand.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ml::cuda::wgmma {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ML_WGMMA_AVAILABLE 1
#endif

constexpr int kRowBytes = 128;  // a swizzled row: 64 bf16
constexpr int kAtomBytes = 1024;

// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile.
__host__ __device__ constexpr int swizzled(int row, int chunk) { return row * kRowBytes + ((chunk ^ (row & 7)) << 4); }

__device__ __forceinline__ uint32_t shared_address(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// A shared-memory matrix descriptor for a swizzled tile starting at `p` (or inside one, for a
// k-step): 128-byte swizzle, 1024 bytes between 8-row groups; the leading offset is unused
// for these shapes and set to 1 as the PTX manual suggests.
__device__ __forceinline__ uint64_t descriptor(const void* p) {
  const uint64_t address = shared_address(p);
  return ((address & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(kAtomBytes >> 4) << 32) | (uint64_t(1) << 62);
}

#ifdef ML_WGMMA_AVAILABLE

// Keeps the compiler from moving reads or writes of accumulators across wgmma's async window.
template <int N>
__device__ __forceinline__ void pin(float (&acc)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(acc[j][e])::"memory");
}

__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int pending>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}

// Writes by ordinary stores or cp.async made visible to wgmma's reads (the async proxy).
__device__ __forceinline__ void fence_shared_for_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The accumulator operand list of m64n64k16 (32 fp32 registers per thread), written out.
#define ML_WGMMA_ACC64 \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), \
  "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), \
  "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), \
  "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), \
  "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), \
  "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
  "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), \
  "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
#define ML_WGMMA_D64 \
  "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"

// d (64 × 64) = a·b + (accumulate ? d : 0); a K-major from shared memory, b K-major (b's rows
// are the 64 output columns).
__device__ __forceinline__ void mma_shared(float (&d)[8][4], uint64_t a, uint64_t b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ML_WGMMA_D64 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
      : ML_WGMMA_ACC64
      : "l"(a), "l"(b), "r"(int(accumulate)));
}

// d (64 × 64) += a·b; a from registers (16 × 16 per warp, mma.sync's A layout), b MN-major
// from shared memory (its rows are the 16 k's, its 64 columns the outputs).
__device__ __forceinline__ void mma_registers_transposed_b(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ML_WGMMA_D64 ", {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
      : ML_WGMMA_ACC64
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

#undef ML_WGMMA_ACC64
#undef ML_WGMMA_D64

#endif  // ML_WGMMA_AVAILABLE

}  // namespace ml::cuda::wgmma
