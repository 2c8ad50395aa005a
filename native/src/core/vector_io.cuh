// Runs of consecutive elements between device memory and registers, up to 16 bytes per
// access when the address is aligned and the whole run is in bounds, element by element otherwise
// (ragged edges, odd sizes). Raw bits stay in 32-bit registers until used, so a load can be
// issued early and its data consumed later (prefetching the next tile). warp_dots: a warp's
// dot products of one matrix row with a few vectors, for matrix–vector products.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "cuda_math.cuh"

namespace ml::cuda {

template <typename T, int kCount>
struct Run;

// fp32: one word per element.
template <int kCount>
struct Run<float, kCount> {
  static constexpr int kWords = kCount;
  uint32_t w[kWords];
  __device__ __forceinline__ float at(int i) const { return __uint_as_float(w[i]); }
  __device__ __forceinline__ void set_scalar(int i, const float* p) { w[i] = __float_as_uint(p[i]); }
  __device__ __forceinline__ void zero(int i) { w[i] = 0; }
};

// bf16: two elements per word, element 2k in the low half (little-endian memory order).
template <int kCount>
struct Run<bf16, kCount> {
  static constexpr int kWords = (kCount + 1) / 2;
  uint32_t w[kWords];
  __device__ __forceinline__ float at(int i) const {
    return __uint_as_float((i & 1) ? (w[i / 2] & 0xffff0000u) : (w[i / 2] << 16));
  }
  __device__ __forceinline__ void set_scalar(int i, const bf16* p) {
    const uint32_t bits = __bfloat16_as_ushort(p[i]);
    w[i / 2] = (i & 1) ? ((w[i / 2] & 0x0000ffffu) | (bits << 16)) : ((w[i / 2] & 0xffff0000u) | bits);
  }
  __device__ __forceinline__ void zero(int i) { w[i / 2] &= (i & 1) ? 0x0000ffffu : 0xffff0000u; }
  __device__ __forceinline__ uint32_t bits(int i) const { return (i & 1) ? (w[i / 2] >> 16) : (w[i / 2] & 0xffffu); }
};

// Widest access (16, 8 or 4 bytes) that a run of kCount elements divides into.
template <typename T, int kCount>
__host__ __device__ constexpr int access_bytes() {
  constexpr int bytes = kCount * int(sizeof(T));
  return bytes % 16 == 0 ? 16 : bytes % 8 == 0 ? 8 : bytes % 4 == 0 ? 4 : 0;
}

// Loads p[0, kCount) into r; elements at and past `valid` read as 0.
template <typename T, int kCount>
__device__ __forceinline__ void load_run(Run<T, kCount>& r, const T* __restrict__ p, int valid) {
  constexpr int kBytes = access_bytes<T, kCount>();
  if constexpr (kBytes > 0) {
    if (valid >= kCount && (reinterpret_cast<uintptr_t>(p) & (kBytes - 1)) == 0) {
      constexpr int kWordsPer = kBytes / 4;
#pragma unroll
      for (int v = 0; v < Run<T, kCount>::kWords / kWordsPer; ++v) {
        if constexpr (kBytes == 16) {
          const uint4 q = __ldg(reinterpret_cast<const uint4*>(p) + v);
          r.w[4 * v] = q.x;
          r.w[4 * v + 1] = q.y;
          r.w[4 * v + 2] = q.z;
          r.w[4 * v + 3] = q.w;
        } else if constexpr (kBytes == 8) {
          const uint2 q = __ldg(reinterpret_cast<const uint2*>(p) + v);
          r.w[2 * v] = q.x;
          r.w[2 * v + 1] = q.y;
        } else {
          r.w[v] = __ldg(reinterpret_cast<const unsigned int*>(p) + v);
        }
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < Run<T, kCount>::kWords; ++i) r.w[i] = 0;
#pragma unroll
  for (int i = 0; i < kCount; ++i)
    if (i < valid) r.set_scalar(i, p);
}

// Stores v[0, valid) to p as T (rounded to nearest even for bf16).
template <typename T, int kCount>
__device__ __forceinline__ void store_run(T* __restrict__ p, const float (&v)[kCount], int valid) {
  constexpr int kBytes = access_bytes<T, kCount>();
  if constexpr (kBytes > 0) {
    if (valid >= kCount && (reinterpret_cast<uintptr_t>(p) & (kBytes - 1)) == 0) {
      uint32_t w[kCount * sizeof(T) / 4];
#pragma unroll
      for (int k = 0; k < int(sizeof(w) / 4); ++k) {
        if constexpr (sizeof(T) == 4) {
          w[k] = __float_as_uint(v[k]);
        } else {
          const __nv_bfloat162 pair = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
          w[k] = *reinterpret_cast<const uint32_t*>(&pair);
        }
      }
      constexpr int kWordsPer = kBytes / 4;
#pragma unroll
      for (int q = 0; q < int(sizeof(w) / 4) / kWordsPer; ++q) {
        if constexpr (kBytes == 16)
          reinterpret_cast<uint4*>(p)[q] = make_uint4(w[4 * q], w[4 * q + 1], w[4 * q + 2], w[4 * q + 3]);
        else if constexpr (kBytes == 8)
          reinterpret_cast<uint2*>(p)[q] = make_uint2(w[2 * q], w[2 * q + 1]);
        else
          reinterpret_cast<unsigned int*>(p)[q] = w[q];
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kCount; ++i)
    if (i < valid) p[i] = from_float<T>(v[i]);
}

// The dot products of one row w (n elements) with `rows` ≤ kRows vectors v + m·ld, summed over
// the warp (every lane gets them): the row is read once, each lane loading 4 runs of 8
// elements before it multiplies, so that enough loads are in flight to stream a matrix at
// bandwidth when a warp (or a few) per weight row makes a matrix–vector product.
// before_inputs() runs once per lane before its first read of v, after its first loads of w
// were issued (a chained kernel's wait: the weights stream in while the kernel before ends).
struct NothingToWaitFor {
  __device__ void operator()() const {}
};

template <int kRows, typename T, typename BeforeInputs = NothingToWaitFor>
__device__ __forceinline__ void warp_dots(const T* __restrict__ w, const T* __restrict__ v, int64_t ld, int rows,
                                          int64_t n, float (&out)[kRows], BeforeInputs before_inputs = {}) {
  constexpr int kRun = 8, kUnroll = 4, kStride = 32 * kRun;
#pragma unroll
  for (int m = 0; m < kRows; ++m) out[m] = 0.f;
  bool waited = false;
  for (int64_t i = int64_t(threadIdx.x & 31) * kRun; i < n; i += kUnroll * kStride) {
    Run<T, kRun> wr[kUnroll];
    int valid[kUnroll];  // elements of run u inside the row (≤ 0: none)
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t left = n - i - u * kStride;
      valid[u] = left < kRun ? int(left < 0 ? 0 : left) : kRun;
      load_run(wr[u], w + i + u * kStride, valid[u]);
    }
    if (!waited) before_inputs(), waited = true;
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      if (m >= rows) break;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        Run<T, kRun> vr;
        load_run(vr, v + m * ld + i + u * kStride, valid[u]);
#pragma unroll
        for (int k = 0; k < kRun; ++k) out[m] += wr[u].at(k) * vr.at(k);
      }
    }
  }
  if (!waited) before_inputs();
#pragma unroll
  for (int m = 0; m < kRows; ++m) out[m] = warp_sum(out[m]);
}

}  // namespace ml::cuda
