// Tensor-core attention for bf16 with head_dim 64 (FlashAttention-2's scheme on mma.sync
// m16n8k16): blocks of 4 warps own 64 rows, 16 per warp; the other side streams through shared
// memory in tiles of 64. Scores stay in registers as mma accumulators, whose layout is also an
// mma A operand once rounded to bf16, so P·V and the backward's products read them in place.
// Layouts (lane = 4·g + t): an accumulator of a 16×8 tile holds rows g and g+8, columns 2t and
// 2t+1. Included by cuda.cu only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../../core/cuda_math.cuh"
#include "../../core/wgmma.cuh"

namespace ml::cuda::tensor_core {

constexpr int kDim = 64;              // head_dim
constexpr int kRows = 64;             // rows a block owns, and rows of a streamed tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kLd = kDim + 8;         // padded shared rows: ldmatrix reads without bank conflicts
constexpr int kKSteps = kDim / 16;    // mma k-steps over the head dimension
constexpr int kDimTiles = kDim / 8;   // 8-wide accumulator tiles over the head dimension
constexpr int kRowTiles = kRows / 8;  // 8-wide accumulator tiles over a streamed tile
constexpr float kLog2e = 1.4426950408889634f;

struct Args {
  const bf16 *q, *k, *v, *out, *dout;
  bf16 *dq, *dk, *dv, *out_w;
  float* lse_w;
  const float *lse, *D;
  int64_t batch, len, heads, kv_heads;
  float scale;
  __host__ __device__ int64_t tiles() const { return (len + kRows - 1) / kRows; }
};

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(wgmma::shared_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(wgmma::shared_address(p)));
}

// d += a (16×16, row-major) · b (16×8, col-major), fp32 accumulators.
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Rows [first, first + kRows) of a (len, stride) bf16 view into shared rows of kLd; zero past len.
__device__ __forceinline__ void load_rows(bf16* dst, const bf16* src, int64_t stride, int64_t first, int64_t len) {
  constexpr int kVectors = kRows * kDim / 8;  // 16-byte vectors
  for (int i = threadIdx.x; i < kVectors; i += kThreads) {
    const int r = i / (kDim / 8), c = (i % (kDim / 8)) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (first + r < len) v = *reinterpret_cast<const uint4*>(src + (first + r) * stride + c);
    *reinterpret_cast<uint4*>(dst + r * kLd + c) = v;
  }
}

// load_rows through cp.async: the copy runs while the block computes on the other buffer.
// Rows past len are zero-filled (a source size of 0; the address stays inside the tensor).
__device__ __forceinline__ void load_rows_async(bf16* dst, const bf16* src, int64_t stride, int64_t first,
                                                int64_t len) {
  constexpr int kVectors = kRows * kDim / 8;
  for (int i = threadIdx.x; i < kVectors; i += kThreads) {
    const int r = i / (kDim / 8), c = (i % (kDim / 8)) * 8;
    const bool inside = first + r < len;
    const bf16* from = src + (inside ? first + r : 0) * stride + c;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(wgmma::shared_address(dst + r * kLd + c)),
                 "l"(from), "r"(inside ? 16 : 0));
  }
}

__device__ __forceinline__ void async_commit() { asm volatile("cp.async.commit_group;\n"); }

// Waits until at most `pending` committed groups are still in flight.
template <int pending>
__device__ __forceinline__ void async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

// The A operand of the warp's 16 rows of a shared tile, every k-step of the head dimension.
__device__ __forceinline__ void load_a(uint32_t (&a)[kKSteps][4], const bf16* tile, int warp_row) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) ldmatrix_x4(a[kk], tile + (warp_row + lane % 16) * kLd + kk * 16 + (lane / 16) * 8);
}

// acc (16 rows × kRows columns) += A (16 × kDim) · tileᵀ, tile a shared (kRows, kDim) block:
// scores Q·Kᵀ, or the backward's dO·Vᵀ, Kᵀ-side products.
__device__ __forceinline__ void mma_rows_by_tile(float (&acc)[kRowTiles][4], const uint32_t (&a)[kKSteps][4],
                                                 const bf16* tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk)
#pragma unroll
    for (int np = 0; np < kRowTiles / 2; ++np) {
      uint32_t b[4];
      ldmatrix_x4(b, tile + (np * 16 + (lane / 16) * 8 + lane % 8) * kLd + kk * 16 + ((lane / 8) % 2) * 8);
      mma(acc[2 * np], a[kk], b[0], b[1]);
      mma(acc[2 * np + 1], a[kk], b[2], b[3]);
    }
}

// acc (16 × kDim) += P (16 × kRows, accumulators rounded to bf16) · tile, tile a shared
// (kRows, kDim) block read transposed: P·V, and the backward's dS·K, Pᵀ·dO, dSᵀ·Q.
__device__ __forceinline__ void mma_scores_by_tile(float (&acc)[kDimTiles][4], const float (&p)[kRowTiles][4],
                                                   const bf16* tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kRows / 16; ++kk) {
    const uint32_t a[4] = {pack(p[2 * kk][0], p[2 * kk][1]), pack(p[2 * kk][2], p[2 * kk][3]),
                           pack(p[2 * kk + 1][0], p[2 * kk + 1][1]), pack(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int dp = 0; dp < kDimTiles / 2; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, tile + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kLd + dp * 16 + (lane / 16) * 8);
      mma(acc[2 * dp], a, b[0], b[1]);
      mma(acc[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

// Writes a warp's 16 × kDim accumulators, times `scale`, to rows of a (len, stride) view.
__device__ __forceinline__ void store_rows(bf16* dst, int64_t stride, int64_t first, int64_t len,
                                           const float (&acc)[kDimTiles][4], float scale0, float scale1) {
  const int lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) {
    const int c = j * 8 + 2 * t;
    if (first + g < len)
      *reinterpret_cast<__nv_bfloat162*>(dst + (first + g) * stride + c) =
          __floats2bfloat162_rn(acc[j][0] * scale0, acc[j][1] * scale0);
    if (first + g + 8 < len)
      *reinterpret_cast<__nv_bfloat162*>(dst + (first + g + 8) * stride + c) =
          __floats2bfloat162_rn(acc[j][2] * scale1, acc[j][3] * scale1);
  }
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
}

// Query tiles run last first (blockIdx.x 0 takes the last tile): under the causal mask later
// tiles have more keys, so the long blocks start first. Key tiles are double-buffered.
__global__ void __launch_bounds__(kThreads) forward_kernel(Args a) {
  extern __shared__ __align__(16) unsigned char raw[];
  constexpr int kTileElems = kRows * kLd;
  bf16* Qs = reinterpret_cast<bf16*>(raw);
  // Buffer i of keys and values: tiles 1 + 2i and 2 + 2i (offsets, not arrays: no local memory).
  auto Ks = [&](int i) { return Qs + (1 + 2 * i) * kTileElems; };
  auto Vs = [&](int i) { return Qs + (2 + 2 * i) * kTileElems; };
  const int64_t qt = a.tiles() - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, g_kv = h / (a.heads / a.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
  const int64_t q_stride = a.heads * kDim, kv_stride = a.kv_heads * kDim;
  const bf16* qh = a.q + (b * a.len * a.heads + h) * kDim;
  const bf16* kg = a.k + (b * a.len * a.kv_heads + g_kv) * kDim;
  const bf16* vg = a.v + (b * a.len * a.kv_heads + g_kv) * kDim;
  load_rows_async(Qs, qh, q_stride, qt * kRows, a.len);
  load_rows_async(Ks(0), kg, kv_stride, 0, a.len);
  load_rows_async(Vs(0), vg, kv_stride, 0, a.len);
  async_commit();
  const int64_t row0 = qt * kRows + warp * 16 + g, row1 = row0 + 8;  // this thread's two query rows
  uint32_t qf[kKSteps][4];
  float o[kDimTiles][4];
  zero(o);
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float scale2 = a.scale * kLog2e;  // exponents in base 2
  for (int64_t kt = 0; kt <= qt; ++kt) {
    const int buf = int(kt & 1);
    if (kt < qt) {
      load_rows_async(Ks(buf ^ 1), kg, kv_stride, (kt + 1) * kRows, a.len);
      load_rows_async(Vs(buf ^ 1), vg, kv_stride, (kt + 1) * kRows, a.len);
      async_commit();
      async_wait<1>();
    } else {
      async_wait<0>();
    }
    __syncthreads();
    if (kt == 0) load_a(qf, Qs, warp * 16);
    float s[kRowTiles][4];
    zero(s);
    mma_rows_by_tile(s, qf, Ks(buf));
    float max0 = -INFINITY, max1 = -INFINITY;
    const bool diagonal = kt == qt;  // the only tile with keys after a query or past len
#pragma unroll
    for (int j = 0; j < kRowTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = kt * kRows + j * 8 + 2 * t + (e & 1), row = e < 2 ? row0 : row1;
        s[j][e] = !diagonal || (key <= row && key < a.len) ? s[j][e] * scale2 : -INFINITY;
        if (e < 2) max0 = fmaxf(max0, s[j][e]);
        else max1 = fmaxf(max1, s[j][e]);
      }
#pragma unroll
    for (int o_ = 1; o_ <= 2; o_ <<= 1) {
      max0 = fmaxf(max0, __shfl_xor_sync(0xffffffffu, max0, o_));
      max1 = fmaxf(max1, __shfl_xor_sync(0xffffffffu, max1, o_));
    }
    const float new0 = fmaxf(m0, max0), new1 = fmaxf(m1, max1);
    const float base0 = new0 == -INFINITY ? 0.f : new0, base1 = new1 == -INFINITY ? 0.f : new1;
    const float alpha0 = exp2f(m0 - base0), alpha1 = exp2f(m1 - base1);
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int j = 0; j < kRowTiles; ++j) {
      s[j][0] = exp2f(s[j][0] - base0), s[j][1] = exp2f(s[j][1] - base0);
      s[j][2] = exp2f(s[j][2] - base1), s[j][3] = exp2f(s[j][3] - base1);
      sum0 += s[j][0] + s[j][1], sum1 += s[j][2] + s[j][3];
    }
    l0 = l0 * alpha0 + sum0, l1 = l1 * alpha1 + sum1;
    m0 = new0, m1 = new1;
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) o[j][0] *= alpha0, o[j][1] *= alpha0, o[j][2] *= alpha1, o[j][3] *= alpha1;
    mma_scores_by_tile(o, s, Vs(buf));
    __syncthreads();  // the buffer is refilled two tiles on
  }
#pragma unroll
  for (int o_ = 1; o_ <= 2; o_ <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o_);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o_);
  }
  store_rows(a.out_w + (b * a.len * a.heads + h) * kDim, q_stride, qt * kRows + warp * 16, a.len, o, 1.f / l0,
             1.f / l1);
  if (t == 0) {
    float* lse = a.lse_w + (b * a.heads + h) * a.len;
    if (row0 < a.len) lse[row0] = (m0 + log2f(l0)) / kLog2e;
    if (row1 < a.len) lse[row1] = (m1 + log2f(l1)) / kLog2e;
  }
}

// dk, dv of a tile of 64 keys (16 per warp), over the query tiles of every head of its group.
__global__ void __launch_bounds__(kThreads) dkdv_kernel(Args a) {
  extern __shared__ __align__(16) unsigned char raw[];
  bf16 *Ks = reinterpret_cast<bf16*>(raw), *Vs = Ks + kRows * kLd, *Qs = Vs + kRows * kLd, *dOs = Qs + kRows * kLd;
  float *lse_s = reinterpret_cast<float*>(dOs + kRows * kLd), *D_s = lse_s + kRows;
  const int64_t kt = blockIdx.x, g_kv = blockIdx.y, b = blockIdx.z, group = a.heads / a.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, t = lane % 4;
  const int64_t q_stride = a.heads * kDim, kv_stride = a.kv_heads * kDim;
  const int64_t kv_offset = (b * a.len * a.kv_heads + g_kv) * kDim;
  load_rows(Ks, a.k + kv_offset, kv_stride, kt * kRows, a.len);
  load_rows(Vs, a.v + kv_offset, kv_stride, kt * kRows, a.len);
  __syncthreads();
  uint32_t kf[kKSteps][4], vf[kKSteps][4];
  load_a(kf, Ks, warp * 16);
  load_a(vf, Vs, warp * 16);
  const int64_t key0 = kt * kRows + warp * 16 + lane / 4, key1 = key0 + 8;  // this thread's two keys
  float dk[kDimTiles][4], dv[kDimTiles][4];
  zero(dk);
  zero(dv);
  const float scale2 = a.scale * kLog2e;
  for (int64_t h = g_kv * group; h < (g_kv + 1) * group; ++h) {
    const int64_t q_offset = (b * a.len * a.heads + h) * kDim, stats = (b * a.heads + h) * a.len;
    for (int64_t qt = kt; qt < a.tiles(); ++qt) {
      __syncthreads();
      load_rows(Qs, a.q + q_offset, q_stride, qt * kRows, a.len);
      load_rows(dOs, a.dout + q_offset, q_stride, qt * kRows, a.len);
      for (int i = threadIdx.x; i < kRows; i += kThreads) {
        const int64_t row = qt * kRows + i;
        lse_s[i] = row < a.len ? a.lse[stats + row] * kLog2e : 0.f;
        D_s[i] = row < a.len ? a.D[stats + row] : 0.f;
      }
      __syncthreads();
      float p[kRowTiles][4], dp[kRowTiles][4];  // Pᵀ and dPᵀ: this warp's keys × the tile's queries
      zero(p);
      zero(dp);
      mma_rows_by_tile(p, kf, Qs);
      mma_rows_by_tile(dp, vf, dOs);
#pragma unroll
      for (int j = 0; j < kRowTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = j * 8 + 2 * t + (e & 1);
          const int64_t query = qt * kRows + col, key = e < 2 ? key0 : key1;
          const bool valid = key <= query && query < a.len && key < a.len;
          p[j][e] = valid ? exp2f(p[j][e] * scale2 - lse_s[col]) : 0.f;
          dp[j][e] = p[j][e] * (dp[j][e] - D_s[col]);  // dSᵀ
        }
      mma_scores_by_tile(dv, p, dOs);
      mma_scores_by_tile(dk, dp, Qs);
    }
  }
  store_rows(a.dk + kv_offset, kv_stride, kt * kRows + warp * 16, a.len, dk, a.scale, a.scale);
  store_rows(a.dv + kv_offset, kv_stride, kt * kRows + warp * 16, a.len, dv, 1.f, 1.f);
}

// dq of a tile of 64 queries (16 per warp), over the key tiles at or before it.
__global__ void __launch_bounds__(kThreads) dq_kernel(Args a) {
  extern __shared__ __align__(16) unsigned char raw[];
  bf16 *Qs = reinterpret_cast<bf16*>(raw), *dOs = Qs + kRows * kLd, *Ks = dOs + kRows * kLd, *Vs = Ks + kRows * kLd;
  const int64_t qt = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g_kv = h / (a.heads / a.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, t = lane % 4;
  const int64_t q_stride = a.heads * kDim, kv_stride = a.kv_heads * kDim;
  const int64_t q_offset = (b * a.len * a.heads + h) * kDim, kv_offset = (b * a.len * a.kv_heads + g_kv) * kDim;
  const int64_t stats = (b * a.heads + h) * a.len;
  load_rows(Qs, a.q + q_offset, q_stride, qt * kRows, a.len);
  load_rows(dOs, a.dout + q_offset, q_stride, qt * kRows, a.len);
  __syncthreads();
  uint32_t qf[kKSteps][4], dof[kKSteps][4];
  load_a(qf, Qs, warp * 16);
  load_a(dof, dOs, warp * 16);
  const int64_t row0 = qt * kRows + warp * 16 + lane / 4, row1 = row0 + 8;
  const float lse0 = row0 < a.len ? a.lse[stats + row0] * kLog2e : 0.f;
  const float lse1 = row1 < a.len ? a.lse[stats + row1] * kLog2e : 0.f;
  const float D0 = row0 < a.len ? a.D[stats + row0] : 0.f, D1 = row1 < a.len ? a.D[stats + row1] : 0.f;
  float dq[kDimTiles][4];
  zero(dq);
  const float scale2 = a.scale * kLog2e;
  for (int64_t kt = 0; kt <= qt; ++kt) {
    __syncthreads();
    load_rows(Ks, a.k + kv_offset, kv_stride, kt * kRows, a.len);
    load_rows(Vs, a.v + kv_offset, kv_stride, kt * kRows, a.len);
    __syncthreads();
    float p[kRowTiles][4], dp[kRowTiles][4];
    zero(p);
    zero(dp);
    mma_rows_by_tile(p, qf, Ks);
    mma_rows_by_tile(dp, dof, Vs);
#pragma unroll
    for (int j = 0; j < kRowTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = kt * kRows + j * 8 + 2 * t + (e & 1), row = e < 2 ? row0 : row1;
        const bool valid = key <= row && row < a.len && key < a.len;
        const float pe = valid ? exp2f(p[j][e] * scale2 - (e < 2 ? lse0 : lse1)) : 0.f;
        dp[j][e] = pe * (dp[j][e] - (e < 2 ? D0 : D1));  // dS
      }
    mma_scores_by_tile(dq, dp, Ks);
  }
  store_rows(a.dq + q_offset, q_stride, qt * kRows + warp * 16, a.len, dq, a.scale, a.scale);
}

constexpr size_t kForwardShared = 5 * kRows * kLd * sizeof(bf16);
constexpr size_t kDkdvShared = 4 * kRows * kLd * sizeof(bf16) + 2 * kRows * sizeof(float);
constexpr size_t kDqShared = 4 * kRows * kLd * sizeof(bf16);

}  // namespace ml::cuda::tensor_core
