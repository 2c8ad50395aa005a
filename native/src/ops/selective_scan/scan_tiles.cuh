// The selective scan's building blocks on the GPU, shared by its kernels (cuda.cu and
// sequence_parallel.cuh): how a block's threads cover 32 channels, tiles of inputs in shared
// memory, and the software-pipelined recurrence over a span of steps.
#pragma once
#include <cuda_bf16.h>

#include <type_traits>

#include "../../core/cuda_math.cuh"
#include "../../core/vector_io.cuh"
#include "selective_scan.h"

namespace ml::cuda {
namespace {

constexpr int kChannels = 32;  // channels per block
constexpr int kFwdSteps = 32;  // time steps per forward tile
constexpr int kBwdSteps = 8;   // per backward tile (its states and adjoints sit in shared memory)
constexpr int kCheckpointGrid = 16;   // checkpoints fall on multiples of this many steps
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xffffffffu;

// How a block's threads cover its 32 channels for a given dstate: G neighbouring lanes
// share a channel, each holding NS = dstate / G states. More threads per channel means
// more warps to hide the recurrence's latencies; fewer means less per-thread overhead.
// Threads per channel for dstate ≥ 4 (a build-time knob for measuring the trade-off between
// warps in flight and per-thread overhead; see bench/NOTES-scan.md).
#ifndef MAMBALAB_SCAN_GROUPS
#define MAMBALAB_SCAN_GROUPS 4
#endif

template <int N>
struct Layout {
  static constexpr int G = N >= MAMBALAB_SCAN_GROUPS ? MAMBALAB_SCAN_GROUPS : N;
  static constexpr int NS = N / G;
  static constexpr int kThreads = kChannels * G;
  // Per-thread partial sums live at [t][g][c]: P apart between groups and S between steps,
  // chosen so that both the scan role's stores (lanes = channels × groups) and the element
  // role's loads (lanes = rows × channel runs) touch 32 different banks.
  static constexpr int P = kChannels + kChannels / G;
  static constexpr int S = G * P + 1;
  __device__ static int part(int t, int g, int c) { return t * S + g * P + c; }
};

// The backward's per-element arrays are [t][kRow]: the padding makes the element role's
// column stores conflict-free while the scan role still reads 32 consecutive channels.
constexpr int kRow = kChannels + 1;

// min(limit, left) for a step count known to fit an int.
__device__ __forceinline__ int steps_left(int limit, int64_t left) { return left < limit ? int(left) : limit; }

// NS consecutive floats between shared (or global) memory and registers, in one access
// when NS allows (the addresses used are aligned to it).
template <int NS>
__device__ __forceinline__ void load_floats(const float* p, float (&v)[NS]) {
  if constexpr (NS % 4 == 0) {
#pragma unroll
    for (int q = 0; q < NS / 4; ++q) {
      const float4 x = reinterpret_cast<const float4*>(p)[q];
      v[4 * q] = x.x;
      v[4 * q + 1] = x.y;
      v[4 * q + 2] = x.z;
      v[4 * q + 3] = x.w;
    }
  } else if constexpr (NS == 2) {
    const float2 x = *reinterpret_cast<const float2*>(p);
    v[0] = x.x;
    v[1] = x.y;
  } else {
#pragma unroll
    for (int j = 0; j < NS; ++j) v[j] = p[j];
  }
}

template <int NS>
__device__ __forceinline__ void store_floats(float* p, const float (&v)[NS]) {
  if constexpr (NS % 4 == 0) {
#pragma unroll
    for (int q = 0; q < NS / 4; ++q)
      reinterpret_cast<float4*>(p)[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
  } else if constexpr (NS == 2) {
    *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
  } else {
#pragma unroll
    for (int j = 0; j < NS; ++j) p[j] = v[j];
  }
}

// ⟨c, h⟩ over a thread's states as a shallow tree (the serial chain would stall each step).
template <int NS>
__device__ __forceinline__ float dot_states(const float (&c)[NS], const float (&h)[NS]) {
  if constexpr (NS >= 4) {
    float p0 = c[0] * h[0], p1 = c[1] * h[1];
#pragma unroll
    for (int j = 2; j < NS; j += 2) {
      p0 = fmaf(c[j], h[j], p0);
      p1 = fmaf(c[j + 1], h[j + 1], p1);
    }
    return p0 + p1;
  } else {
    float y = 0.f;
#pragma unroll
    for (int j = 0; j < NS; ++j) y = fmaf(c[j], h[j], y);
    return y;
  }
}

// A step's operands from shared memory. The loops load step t+1's while computing step t
// (software pipelining), so the shared-memory latency hides behind the arithmetic.
template <int NS>
struct StepOperands {
  float dt, x;  // dt and, by loop, dt·u or dy
  float B[NS], C[NS];
};

// Steps [first, last) of h ← exp(dt·A)·h + dt·u·B for one thread's states, software-pipelined:
// load(t, op) fetches a step's operands from shared memory one step ahead, and the step's
// decays are computed one step ahead too, so neither latency sits on the recurrence.
// after(t, op, h) runs after each update (store the state, the output share, or nothing).
// kCount > 0: exactly kCount steps, fully unrolled, so that every shared-memory address is a
// base plus a constant (no per-step address arithmetic or loop control); 0: any count.
template <int kCount, int NS, typename Load, typename After>
__device__ __forceinline__ void scan_steps(int first, int last, const float (&A2)[NS], float (&h)[NS], Load load,
                                           After after) {
  StepOperands<NS> next;
  float a_next[NS];
  auto fetch = [&](int t) {
    load(t, next);
#pragma unroll
    for (int j = 0; j < NS; ++j) a_next[j] = exp2_approx(next.dt * A2[j]);
  };
  auto step = [&](int t, bool more, int t_next) {
    const StepOperands<NS> op = next;
    float a[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j) a[j] = a_next[j];
    if (more) fetch(t_next);
#pragma unroll
    for (int j = 0; j < NS; ++j) h[j] = fmaf(a[j], h[j], op.x * op.B[j]);
    after(t, op, h);
  };
  fetch(first);
  if constexpr (kCount > 0) {
#pragma unroll
    for (int k = 0; k < kCount; ++k) step(first + k, k + 1 < kCount, first + k + 1);
  } else {
#pragma unroll 4
    for (int t = first; t < last; ++t) step(t, true, min(t + 1, last - 1));
  }
}

// scan_steps over [first, last), fully unrolled when the span is the usual kFull steps.
template <int kFull, int NS, typename Load, typename After>
__device__ __forceinline__ void scan_span(int first, int last, const float (&A2)[NS], float (&h)[NS], Load load,
                                          After after) {
  if (last - first == kFull)
    scan_steps<kFull>(first, last, A2, h, load, after);
  else
    scan_steps<0>(first, last, A2, h, load, after);
}

// Where a thread sits in its two roles. Scan role: channel `sc` of the block, states
// [g·NS, (g+1)·NS). Element role: kPer consecutive elements of the (steps × 32 channels)
// tile, row-major.
template <int kSteps, int N>
struct Roles {
  static constexpr int kPer = kSteps * kChannels / Layout<N>::kThreads;
  int sc, g, row, col;
  int64_t ch;      // global channel of the scan role
  bool ch_ok;      // ch < dim
  int cols_valid;  // element role: how many of its kPer channels exist
  __device__ Roles(int64_t c0, int64_t dim) {
    const int tid = threadIdx.x;
    sc = tid / Layout<N>::G;
    g = tid % Layout<N>::G;
    ch = c0 + sc;
    ch_ok = ch < dim;
    row = tid * kPer / kChannels;
    col = tid * kPer % kChannels;
    const int64_t left = dim - (c0 + col);
    cols_valid = left <= 0 ? 0 : (left >= kPer ? kPer : int(left));
  }
  // Offset of this thread's element run at tile step t0 + row.
  __device__ int64_t at(const ScanDims& d, int64_t b, int64_t t0, int64_t c0) const {
    return ((b * d.len + t0 + row) * d.dim + c0 + col);
  }
};

// B_t / C_t tiles are contiguous in memory ((batch, len, dstate)): thread i loads kPer
// consecutive values of the flat (steps × dstate) block.
template <int kSteps, int N>
struct BCRun {
  static constexpr int kThreads = Layout<N>::kThreads;
  static constexpr int kTotal = kSteps * N;
  static constexpr int kPer = kTotal >= kThreads ? kTotal / kThreads : 1;
  __device__ static int first() { return threadIdx.x * kPer; }
  template <typename T>
  __device__ static void load(Run<T, kPer>& r, const T* base, int64_t b, int64_t len, int64_t t0, int steps) {
    const int valid = steps * N - first();
    load_run(r, base + (b * len + t0) * N + first(), valid < 0 ? 0 : valid);
  }
};

// B_t and C_t of a tile in shared memory, in 2·kSteps·N floats. Packed (bf16 inputs only):
// (B, C) as bf16 pairs in one word, so a thread's NS states cost one 4·NS-byte access
// instead of two, at two integer instructions per state to unpack; the backward, bound by
// shared-memory traffic, packs. Otherwise B then C in fp32; the forward, bound by issue
// slots, does not pack (measured in bench/NOTES-scan.md).
template <typename T, int kSteps, int N, bool kPack>
struct BCTile {
  using Loader = BCRun<kSteps, N>;
  static constexpr int NS = Layout<N>::NS, kPer = Loader::kPer;
  static constexpr bool kPacked = kPack && std::is_same_v<T, bf16>;

  // with_c false (unpacked only): B alone, for a pass that never reads C.
  __device__ static void store(float* base, const Run<T, kPer>& rB, const Run<T, kPer>& rC, bool with_c = true) {
    if (Loader::first() >= Loader::kTotal) return;
    float b[kPer], c[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      if constexpr (kPacked) {
        b[e] = __uint_as_float(rB.bits(e) | (rC.bits(e) << 16));
      } else {
        b[e] = rB.at(e);
        c[e] = with_c ? rC.at(e) : 0.f;
      }
    }
    store_floats(base + Loader::first(), b);
    if constexpr (!kPacked) {
      if (with_c) store_floats(base + kSteps * N + Loader::first(), c);
    }
  }
  __device__ static void load(const float* base, int t, int g, float (&B)[NS], float (&C)[NS]) {
    if constexpr (kPacked) {
      float w[NS];
      load_floats(base + t * N + g * NS, w);
#pragma unroll
      for (int j = 0; j < NS; ++j) {
        const uint32_t x = __float_as_uint(w[j]);
        B[j] = __uint_as_float(x << 16);
        C[j] = __uint_as_float(x & 0xffff0000u);
      }
    } else {
      load_floats(base + t * N + g * NS, B);
      load_floats(base + kSteps * N + t * N + g * NS, C);
    }
  }
  __device__ static void load_b(const float* base, int t, int g, float (&B)[NS]) {
    if constexpr (kPacked) {
      float C[NS];
      load(base, t, g, B, C);
    } else {
      load_floats(base + t * N + g * NS, B);
    }
  }
};

// (dt, dt·u) of a forward tile as pairs, so the scan reads both in one 8-byte access. A row
// is kPairRow pairs and channels 16–31 sit 4 pairs further on: with the element role's
// lanes writing 4 runs of 8 channels on consecutive rows, every half-warp's pairs then
// land on 32 different banks, while the scan role still reads 8 consecutive pairs.
constexpr int kPairRow = 37;
__device__ __forceinline__ int pair_at(int t, int c) { return t * kPairRow + c + (c >> 4) * 4; }

}  // namespace
}  // namespace ml::cuda
