// The selective scan on the GPU: fused, with the state in registers.
//
// A block owns 32 consecutive channels of one sequence and walks time in tiles. Two threads
// share a channel, each holding half of its dstate states in registers, so the recurrence
// of a step is a few fused multiply-adds and one exp2 per state. Inputs are laid out
// (batch, len, dim): a tile of u / delta / z is 32 consecutive channels per step, loaded
// 16 bytes per thread, turned into fp32 (softplus, gates) once per element in shared
// memory, and B_t / C_t are broadcast from shared memory to every channel.
//
// Forward: one pass; saves the state every `checkpoint_every` steps (fp32, the only state
// that reaches device memory) when a backward will follow.
// Backward: walks the chunks between checkpoints from the last to the first. For a chunk it
// recomputes the forward once to get the states at the start of each 16-step tile, then for
// each tile from the last: recomputes the tile's states into shared memory, walks it
// backwards with the adjoint state in registers, and writes du, ddelta, dz. dB and dC are
// sums over channels: a butterfly over the warp's 16 channels, then either per-block
// partials summed in a fixed order (deterministic) or fp32 atomics.
#include <cuda_bf16.h>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "../../core/vector_io.cuh"
#include "selective_scan.h"

namespace ml::cuda {
namespace {

constexpr int kChannels = 32;                  // channels per block
constexpr int kGroups = 2;                     // threads per channel, each with dstate / 2 states
constexpr int kThreads = kChannels * kGroups;  // 64: two warps
constexpr int kFwdSteps = 32;                  // time steps per forward tile
constexpr int kBwdSteps = 16;                  // per backward tile (its states sit in shared memory)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xffffffffu;

// min(limit, left) for a step count known to fit an int.
__device__ __forceinline__ int steps_left(int limit, int64_t left) { return left < limit ? int(left) : limit; }

__device__ __forceinline__ float exp2_approx(float x) {  // MUFU.EX2: relative error ~2⁻²²
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Where a thread sits in its two roles. Scan role: channel `sc` of the block, states
// [g·NS, (g+1)·NS); the two threads of a channel are neighbouring lanes (lane bit 0 = g).
// Element role: kPer consecutive elements of the (steps × 32 channels) tile, row-major.
template <int kSteps>
struct Roles {
  static constexpr int kPer = kSteps * kChannels / kThreads;
  int sc, g, row, col;
  int64_t ch;      // global channel of the scan role
  bool ch_ok;      // ch < dim
  int cols_valid;  // element role: how many of its kPer channels exist
  __device__ Roles(int64_t c0, int64_t dim) {
    const int tid = threadIdx.x;
    sc = tid >> 1;
    g = tid & 1;
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

// B_t / C_t tiles are contiguous in memory ((batch, len, dstate)): thread i loads kPerBC
// consecutive values of the flat (steps × dstate) block.
template <int kSteps, int N>
struct BCRun {
  static constexpr int kTotal = kSteps * N;
  static constexpr int kPer = kTotal >= kThreads ? kTotal / kThreads : 1;
  __device__ static int first() { return threadIdx.x * kPer; }
  template <typename T>
  __device__ static void load(Run<T, kPer>& r, const T* base, int64_t b, int64_t len, int64_t t0, int steps) {
    const int valid = steps * N - first();
    load_run(r, base + (b * len + t0) * N + first(), valid < 0 ? 0 : valid);
  }
  template <typename T>
  __device__ static void to_shared(const Run<T, kPer>& r, float* s) {
#pragma unroll
    for (int e = 0; e < kPer; ++e)
      if (first() + e < kTotal) s[first() + e] = r.at(e);
  }
};

// ---------------------------------------------------------------------------------------
// Forward

template <int N>
struct ForwardShared {
  float dt[kFwdSteps][kChannels];   // softplus(delta + bias)
  float dtu[kFwdSteps][kChannels];  // dt · u
  float y[kFwdSteps][kChannels];    // ⟨C_t, h_t⟩
  float B[kFwdSteps][N], C[kFwdSteps][N];
  float bias[kChannels], D[kChannels];
};

template <typename T, int N>
__global__ void __launch_bounds__(kThreads) scan_forward_kernel(ScanDims d, ScanInputs<T> in, T* __restrict__ out,
                                                                float* __restrict__ ckpt, int ckpt_every) {
  constexpr int NS = N / kGroups;
  using R = Roles<kFwdSteps>;
  using BC = BCRun<kFwdSteps, N>;
  constexpr int kPer = R::kPer;
  __shared__ ForwardShared<N> sh;
  const int64_t b = blockIdx.y, c0 = int64_t(blockIdx.x) * kChannels;
  const R me(c0, d.dim);
  if (threadIdx.x < kChannels) {
    const int64_t c = c0 + threadIdx.x;
    sh.bias[threadIdx.x] = c < d.dim ? in.delta_bias[c] : 0.f;
    sh.D[threadIdx.x] = c < d.dim ? in.D[c] : 0.f;
  }
  float A2[NS], h[NS];
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    A2[j] = me.ch_ok ? in.A[me.ch * N + me.g * NS + j] * kLog2e : 0.f;
    h[j] = 0.f;
  }
  const int64_t n_ckpt = (d.len + ckpt_every - 1) / ckpt_every;
  int until_ckpt = 0;

  Run<T, kPer> ru, rd, rz;
  Run<T, BC::kPer> rB, rC;
  auto load_tile = [&](int64_t t0) {
    const int valid = t0 + me.row < d.len ? me.cols_valid : 0;
    const int64_t at = me.at(d, b, t0, c0);
    load_run(ru, in.u + at, valid);
    load_run(rd, in.delta + at, valid);
    load_run(rz, in.z + at, valid);
    const int steps = (steps_left(kFwdSteps, d.len - t0));
    BC::load(rB, in.B, b, d.len, t0, steps);
    BC::load(rC, in.C, b, d.len, t0, steps);
  };
  load_tile(0);
  __syncthreads();  // sh.bias, sh.D

  for (int64_t t0 = 0; t0 < d.len; t0 += kFwdSteps) {
    const int steps = (steps_left(kFwdSteps, d.len - t0));
    // Elementwise, once per element: dt, dt·u for the scan; the skip and gate for the output.
    float skip[kPer], gate[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int c = me.col + e;
      const float dt = softplus32(rd.at(e) + sh.bias[c]);
      sh.dt[me.row][c] = dt;
      sh.dtu[me.row][c] = dt * ru.at(e);
      skip[e] = sh.D[c] * ru.at(e);
      gate[e] = silu32(rz.at(e));
    }
    BC::to_shared(rB, &sh.B[0][0]);
    BC::to_shared(rC, &sh.C[0][0]);
    __syncthreads();
    if (t0 + kFwdSteps < d.len) load_tile(t0 + kFwdSteps);  // in flight during the scan

    for (int t = 0; t < steps; ++t) {
      if (until_ckpt == 0) {  // the state before this step starts a chunk
        if (ckpt && me.ch_ok) {
          float* dst = ckpt + ((b * n_ckpt + (t0 + t) / ckpt_every) * d.dim + me.ch) * N + me.g * NS;
#pragma unroll
          for (int j = 0; j < NS; ++j) dst[j] = h[j];
        }
        until_ckpt = ckpt_every;
      }
      --until_ckpt;
      const float dt = sh.dt[t][me.sc], dtu = sh.dtu[t][me.sc];
      float y = 0.f;
#pragma unroll
      for (int j = 0; j < NS; ++j) {
        const int n = me.g * NS + j;
        h[j] = fmaf(exp2_approx(dt * A2[j]), h[j], dtu * sh.B[t][n]);
        y = fmaf(sh.C[t][n], h[j], y);
      }
      y += __shfl_xor_sync(kFull, y, 1);
      if (me.g == 0) sh.y[t][me.sc] = y;
    }
    __syncthreads();

    float o[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) o[e] = (sh.y[me.row][me.col + e] + skip[e]) * gate[e];
    if (me.row < steps) store_run(out + me.at(d, b, t0, c0), o, me.cols_valid);
    // No barrier needed here: the next tile writes sh.dt / sh.dtu / sh.B / sh.C, which
    // nobody reads after the barrier above, and sh.y only after its own barrier.
  }
}

// ---------------------------------------------------------------------------------------
// Backward

// Sums v over the 16 lanes that share lane bit 0 (the channel lanes of one state group)
// and scatters the totals: each lane ends with the total of entry `index` in v[0]. When
// the array is shorter than 16 several lanes hold the same entry; `writer` picks one.
template <int kCount, int kMask, int V>
__device__ __forceinline__ void reduce_scatter(float (&v)[V], int lane, int& index, bool& writer) {
  if constexpr (kMask >= 2) {
    if constexpr (kCount > 1) {
      constexpr int kHalf = kCount / 2;
      const bool upper = lane & kMask;
#pragma unroll
      for (int i = 0; i < kHalf; ++i) {
        const float send = upper ? v[i] : v[i + kHalf];
        const float keep = upper ? v[i + kHalf] : v[i];
        v[i] = keep + __shfl_xor_sync(kFull, send, kMask);
      }
      if (upper) index += kHalf;
      reduce_scatter<kHalf, kMask / 2>(v, lane, index, writer);
    } else {
      v[0] += __shfl_xor_sync(kFull, v[0], kMask);
      if (lane & kMask) writer = false;
      reduce_scatter<1, kMask / 2>(v, lane, index, writer);
    }
  }
}

// Shared memory of the backward, carved from one dynamic allocation.
template <int N>
struct BackwardShared {
  static constexpr int NS = N / kGroups;
  float *dt, *dtu, *dy, *y, *sha, *sgb;  // [kBwdSteps][kChannels] each
  float *B, *C;                          // [kBwdSteps][N]
  float *h;                              // [kBwdSteps + 1][NS][kThreads]: h[0] is the tile's initial state
  float *red;                            // [2 warps][kBwdSteps][2N]: warp sums of dB, dC
  float *bias, *D;                       // [kChannels]
  float *sub;                            // [tiles per chunk − 1][NS][kThreads]: states at tile starts

  static size_t bytes(int tiles_per_chunk) {
    return sizeof(float) * (6 * kBwdSteps * kChannels + 2 * kBwdSteps * N + (kBwdSteps + 1) * NS * kThreads +
                            2 * kBwdSteps * 2 * N + 2 * kChannels + (tiles_per_chunk - 1) * NS * kThreads);
  }
  __device__ explicit BackwardShared(float* p) {
    auto take = [&p](int n) {
      float* q = p;
      p += n;
      return q;
    };
    dt = take(kBwdSteps * kChannels);
    dtu = take(kBwdSteps * kChannels);
    dy = take(kBwdSteps * kChannels);
    y = take(kBwdSteps * kChannels);
    sha = take(kBwdSteps * kChannels);
    sgb = take(kBwdSteps * kChannels);
    B = take(kBwdSteps * N);
    C = take(kBwdSteps * N);
    h = take((kBwdSteps + 1) * NS * kThreads);
    red = take(2 * kBwdSteps * 2 * N);
    bias = take(kChannels);
    D = take(kChannels);
    sub = p;
  }
  __device__ float& state(int t, int j) { return h[(t * NS + j) * kThreads + threadIdx.x]; }
  __device__ float& saved(int r, int j) { return sub[(r * NS + j) * kThreads + threadIdx.x]; }
};

template <typename T, int N>
__global__ void __launch_bounds__(kThreads) scan_backward_kernel(ScanDims d, ScanInputs<T> in, const T* __restrict__ dout,
                                                                 const float* __restrict__ ckpt, int ckpt_every,
                                                                 ScanGrads<T> grads, float* __restrict__ dbc,
                                                                 float* __restrict__ param_partial, bool deterministic) {
  constexpr int NS = N / kGroups;
  using R = Roles<kBwdSteps>;
  using BC = BCRun<kBwdSteps, N>;
  constexpr int kPer = R::kPer;
  extern __shared__ float smem[];
  BackwardShared<N> sh(smem);
  const int64_t b = blockIdx.y, c0 = int64_t(blockIdx.x) * kChannels;
  const R me(c0, d.dim);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (threadIdx.x < kChannels) {
    const int64_t c = c0 + threadIdx.x;
    sh.bias[threadIdx.x] = c < d.dim ? in.delta_bias[c] : 0.f;
    sh.D[threadIdx.x] = c < d.dim ? in.D[c] : 0.f;
  }
  float A2[NS], carry[NS], dA[NS];  // carry: a_{t+1}·(dLoss/dh_{t+1}), the adjoint state
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    A2[j] = me.ch_ok ? in.A[me.ch * N + me.g * NS + j] * kLog2e : 0.f;
    carry[j] = 0.f;
    dA[j] = 0.f;
  }
  float dD[kPer], dbias[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) dD[e] = dbias[e] = 0.f;

  const int64_t n_ckpt = (d.len + ckpt_every - 1) / ckpt_every;
  Run<T, kPer> ru, rd, rz, ro;
  Run<T, BC::kPer> rB, rC;

  // dt and dt·u of tile [t0, t0 + steps) and B_t into shared memory; with `everything`, also
  // dy = dout·silu(z) and C_t, keeping u, delta, z, dout in registers for the element phase.
  auto load_dt = [&](int64_t t0, int steps, bool everything) {
    const int valid = me.row < steps ? me.cols_valid : 0;
    const int64_t at = me.at(d, b, t0, c0);
    load_run(ru, in.u + at, valid);
    load_run(rd, in.delta + at, valid);
    BC::load(rB, in.B, b, d.len, t0, steps);
    if (everything) {
      load_run(rz, in.z + at, valid);
      load_run(ro, dout + at, valid);
      BC::load(rC, in.C, b, d.len, t0, steps);
    }
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int c = me.col + e;
      const float dt = softplus32(rd.at(e) + sh.bias[c]);
      sh.dt[me.row * kChannels + c] = dt;
      sh.dtu[me.row * kChannels + c] = dt * ru.at(e);
      if (everything) sh.dy[me.row * kChannels + c] = ro.at(e) * silu32(rz.at(e));
    }
    BC::to_shared(rB, sh.B);
    if (everything) BC::to_shared(rC, sh.C);
  };

  __syncthreads();  // sh.bias, sh.D
  for (int64_t k = n_ckpt - 1; k >= 0; --k) {
    const int64_t tc = k * ckpt_every;
    const int tiles = int((steps_left(ckpt_every, d.len - tc) + kBwdSteps - 1) / kBwdSteps);
    float hc[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j)
      hc[j] = me.ch_ok ? ckpt[((b * n_ckpt + k) * d.dim + me.ch) * N + me.g * NS + j] : 0.f;

    // Pass 1: the states at the start of tiles 1 .. tiles−1 of this chunk.
    {
      float h[NS];
#pragma unroll
      for (int j = 0; j < NS; ++j) h[j] = hc[j];
      for (int r = 0; r + 1 < tiles; ++r) {
        __syncthreads();  // the previous users of sh.dt / sh.dtu / sh.B are done
        load_dt(tc + r * kBwdSteps, kBwdSteps, false);
        __syncthreads();
        for (int t = 0; t < kBwdSteps; ++t) {
          const float dt = sh.dt[t * kChannels + me.sc], dtu = sh.dtu[t * kChannels + me.sc];
#pragma unroll
          for (int j = 0; j < NS; ++j)
            h[j] = fmaf(exp2_approx(dt * A2[j]), h[j], dtu * sh.B[t * N + me.g * NS + j]);
        }
#pragma unroll
        for (int j = 0; j < NS; ++j) sh.saved(r, j) = h[j];  // this thread's own slots
      }
    }

    for (int r = tiles - 1; r >= 0; --r) {
      const int64_t t0 = tc + r * kBwdSteps;
      const int steps = (steps_left(kBwdSteps, d.len - t0));
      __syncthreads();
      load_dt(t0, steps, true);
#pragma unroll
      for (int j = 0; j < NS; ++j) sh.state(0, j) = r == 0 ? hc[j] : sh.saved(r - 1, j);
      __syncthreads();

      // Forward through the tile again, keeping every state (this thread's slots only).
      {
        float h[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) h[j] = sh.state(0, j);
        for (int t = 0; t < steps; ++t) {
          const float dt = sh.dt[t * kChannels + me.sc], dtu = sh.dtu[t * kChannels + me.sc];
          float y = 0.f;
#pragma unroll
          for (int j = 0; j < NS; ++j) {
            const int n = me.g * NS + j;
            h[j] = fmaf(exp2_approx(dt * A2[j]), h[j], dtu * sh.B[t * N + n]);
            sh.state(t + 1, j) = h[j];
            y = fmaf(sh.C[t * N + n], h[j], y);
          }
          y += __shfl_xor_sync(kFull, y, 1);
          if (me.g == 0) sh.y[t * kChannels + me.sc] = y;
        }
      }

      // Backwards through the tile: the adjoint state in registers.
      for (int t = steps - 1; t >= 0; --t) {
        const float dt = sh.dt[t * kChannels + me.sc], dtu = sh.dtu[t * kChannels + me.sc];
        const float dy = sh.dy[t * kChannels + me.sc];
        float sha = 0.f, sgb = 0.f, v[2 * NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
          const int n = me.g * NS + j;
          const float gh = fmaf(dy, sh.C[t * N + n], carry[j]);  // dLoss/dh_t
          const float a = exp2_approx(dt * A2[j]);
          const float q = gh * a * sh.state(t, j);  // gh · ∂h_t/∂(dt·A) / (dt·A)'s factor
          sha = fmaf(q, A2[j], sha);
          dA[j] = fmaf(q, dt, dA[j]);
          sgb = fmaf(gh, sh.B[t * N + n], sgb);
          v[j] = me.ch_ok ? gh * dtu : 0.f;                         // → dB_t[n]
          v[NS + j] = me.ch_ok ? dy * sh.state(t + 1, j) : 0.f;  // → dC_t[n]
          carry[j] = a * gh;
        }
        sha += __shfl_xor_sync(kFull, sha, 1);
        sgb += __shfl_xor_sync(kFull, sgb, 1);
        if (me.g == 0) {
          sh.sha[t * kChannels + me.sc] = sha * kLn2;
          sh.sgb[t * kChannels + me.sc] = sgb;
        }
        int index = 0;
        bool writer = true;
        reduce_scatter<2 * NS, 16>(v, lane, index, writer);
        if (writer) sh.red[(warp * kBwdSteps + t) * 2 * N + me.g * 2 * NS + index] = v[0];
      }
      __syncthreads();

      // Per element: du, ddelta, dz; dD and ddelta_bias summed in registers.
      {
        float du[kPer], ddelta[kPer], dz[kPer];
#pragma unroll
        for (int e = 0; e < kPer; ++e) {
          const int c = me.col + e, s = me.row * kChannels + c;
          const float u = ru.at(e), z = rz.at(e), o = ro.at(e), pre = rd.at(e) + sh.bias[c];
          const float dy = sh.dy[s], sgb = sh.sgb[s];
          dz[e] = o * (sh.y[s] + sh.D[c] * u) * silu_grad32(z);
          du[e] = dy * sh.D[c] + sgb * sh.dt[s];
          ddelta[e] = (sh.sha[s] + sgb * u) * softplus_grad32(pre);
          if (me.row < steps) {
            dD[e] += dy * u;
            dbias[e] += ddelta[e];
          }
        }
        if (me.row < steps) {
          const int64_t at = me.at(d, b, t0, c0);
          store_run(grads.du + at, du, me.cols_valid);
          store_run(grads.ddelta + at, ddelta, me.cols_valid);
          store_run(grads.dz + at, dz, me.cols_valid);
        }
      }

      // dB, dC of the tile: the two warps' sums, then this block's partial or an atomic.
      for (int i = threadIdx.x; i < steps * 2 * N; i += kThreads) {
        const int t = i / (2 * N), slot = i % (2 * N);
        const int group = slot / (2 * NS), idx = slot % (2 * NS);
        const int kind = idx < NS ? 0 : 1, n = group * NS + idx % NS;
        const float v = sh.red[t * 2 * N + slot] + sh.red[(kBwdSteps + t) * 2 * N + slot];
        const int64_t out = ((b * d.len + t0 + t) * 2 + kind) * N + n;
        if (deterministic)
          dbc[int64_t(blockIdx.x) * d.batch * d.len * 2 * N + out] = v;
        else
          atomicAdd(dbc + out, v);
      }
    }
  }

  // Parameter gradients: dA per (channel, state) from the scan role; dD and ddelta_bias per
  // channel from the element role, whose kBwdSteps rows are summed in row order first.
  if (me.ch_ok) {
#pragma unroll
    for (int j = 0; j < NS; ++j) {
      const int64_t i = me.ch * N + me.g * NS + j;
      if (deterministic)
        param_partial[b * d.dim * N + i] = dA[j];
      else
        atomicAdd(grads.dA + i, dA[j]);
    }
  }
  __syncthreads();
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    sh.dt[me.row * kChannels + me.col + e] = dD[e];
    sh.dtu[me.row * kChannels + me.col + e] = dbias[e];
  }
  __syncthreads();
  if (threadIdx.x < kChannels && c0 + threadIdx.x < d.dim) {
    float sd = 0.f, sb = 0.f;
    for (int row = 0; row < kBwdSteps; ++row) {
      sd += sh.dt[row * kChannels + threadIdx.x];
      sb += sh.dtu[row * kChannels + threadIdx.x];
    }
    const int64_t c = c0 + threadIdx.x;
    if (deterministic) {
      float* dD_part = param_partial + d.batch * d.dim * N;
      dD_part[b * d.dim + c] = sd;
      dD_part[d.batch * d.dim + b * d.dim + c] = sb;
    } else {
      atomicAdd(grads.dD + c, sd);
      atomicAdd(grads.ddelta_bias + c, sb);
    }
  }
}

// dB, dC from the fp32 (batch, len, {B, C}, dstate) sums: over the channel blocks' partials
// in block order (deterministic), or straight from the atomics' buffer (parts = 1).
template <typename T>
__global__ void scan_dbc_kernel(const float* __restrict__ dbc, int64_t parts, int64_t rows, int64_t n_state,
                                T* __restrict__ dB, T* __restrict__ dC) {
  const int64_t total = rows * 2 * n_state;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int64_t p = 0; p < parts; ++p) s += dbc[p * total + i];
    const int64_t row = i / (2 * n_state), kind = (i / n_state) % 2, n = i % n_state;
    (kind == 0 ? dB : dC)[row * n_state + n] = from_float<T>(s);
  }
}

void check_dims(const ScanDims& d, const ScanOptions& o, const char* op) {
  ML_CHECK(d.dstate == 2 || d.dstate == 4 || d.dstate == 8 || d.dstate == 16, op, ": dstate ", d.dstate,
           " is not supported on CUDA (2, 4, 8 or 16)");
  ML_CHECK(o.checkpoint_every >= kBwdSteps && o.checkpoint_every % kBwdSteps == 0 && o.checkpoint_every <= (1 << 20),
           op, ": checkpoint_every must be a positive multiple of ", kBwdSteps, ", got ", o.checkpoint_every);
  ML_CHECK(d.batch <= 65535, op, ": batch ", d.batch, " exceeds one launch");
}

dim3 grid_of(const ScanDims& d) { return dim3(unsigned((d.dim + kChannels - 1) / kChannels), unsigned(d.batch)); }

template <typename T, int N>
void launch_forward(const ScanDims& d, const ScanInputs<T>& in, T* out, float* ckpt, const ScanOptions& o,
                    cudaStream_t stream) {
  scan_forward_kernel<T, N><<<grid_of(d), kThreads, 0, stream>>>(d, in, out, ckpt, int(o.checkpoint_every));
  ML_CUDA_CHECK_LAUNCH("selective_scan_forward");
}

template <typename T, int N>
void launch_backward(const ScanDims& d, const ScanInputs<T>& in, const T* dout, const float* ckpt,
                     const ScanGrads<T>& g, const ScanOptions& o, cudaStream_t stream) {
  const int64_t blocks_c = (d.dim + kChannels - 1) / kChannels, rows = d.batch * d.len;
  const int64_t parts = o.deterministic ? blocks_c : 1;
  DeviceBuffer<float> dbc(parts * rows * 2 * N, "selective_scan_backward");
  DeviceBuffer<float> param_partial(o.deterministic ? d.batch * d.dim * (N + 2) : 0, "selective_scan_backward");
  if (!o.deterministic)
    ML_CUDA_CHECK("selective_scan_backward", cudaMemsetAsync(dbc.get(), 0, dbc.bytes(), stream));
  const size_t smem = BackwardShared<N>::bytes(int(o.checkpoint_every / kBwdSteps));
  ML_CHECK(smem <= 227 * 1024, "selective_scan_backward: checkpoint_every ", o.checkpoint_every,
           " needs more shared memory (", smem, " bytes) than a block gets; use a smaller value");
  auto kernel = scan_backward_kernel<T, N>;
  ML_CUDA_CHECK("selective_scan_backward",
                cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid_of(d), kThreads, smem, stream>>>(d, in, dout, ckpt, int(o.checkpoint_every), g, dbc.get(),
                                                 param_partial.get(), o.deterministic);
  ML_CUDA_CHECK_LAUNCH("selective_scan_backward");
  scan_dbc_kernel<T><<<blocks_for(rows * 2 * N, 256), 256, 0, stream>>>(dbc.get(), parts, rows, N, g.dB, g.dC);
  ML_CUDA_CHECK_LAUNCH("selective_scan_backward");
  if (o.deterministic) {
    const float* p = param_partial.get();
    sum_partials(p, d.batch, d.dim * N, g.dA, true, stream, "selective_scan_backward");
    sum_partials(p + d.batch * d.dim * N, d.batch, d.dim, g.dD, true, stream, "selective_scan_backward");
    sum_partials(p + d.batch * d.dim * (N + 1), d.batch, d.dim, g.ddelta_bias, true, stream,
                 "selective_scan_backward");
  }
}

}  // namespace

int64_t scan_checkpoint_elements(const ScanDims& d, const ScanOptions& o) {
  return d.batch * ((d.len + o.checkpoint_every - 1) / o.checkpoint_every) * d.dim * d.dstate;
}

template <typename T>
void selective_scan_forward(const ScanDims& d, const ScanInputs<T>& in, T* out, float* ckpt, const ScanOptions& o,
                            cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  check_dims(d, o, "selective_scan_forward");
  switch (d.dstate) {
    case 2: launch_forward<T, 2>(d, in, out, ckpt, o, stream); break;
    case 4: launch_forward<T, 4>(d, in, out, ckpt, o, stream); break;
    case 8: launch_forward<T, 8>(d, in, out, ckpt, o, stream); break;
    default: launch_forward<T, 16>(d, in, out, ckpt, o, stream); break;
  }
}

template <typename T>
void selective_scan_backward(const ScanDims& d, const ScanInputs<T>& in, const T* dout, const float* ckpt,
                             const ScanGrads<T>& g, const ScanOptions& o, cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  check_dims(d, o, "selective_scan_backward");
  ML_CHECK(ckpt != nullptr, "selective_scan_backward: needs the checkpoints saved by the forward");
  switch (d.dstate) {
    case 2: launch_backward<T, 2>(d, in, dout, ckpt, g, o, stream); break;
    case 4: launch_backward<T, 4>(d, in, dout, ckpt, g, o, stream); break;
    case 8: launch_backward<T, 8>(d, in, dout, ckpt, g, o, stream); break;
    default: launch_backward<T, 16>(d, in, dout, ckpt, g, o, stream); break;
  }
}

#define ML_INSTANTIATE(T)                                                                                       \
  template void selective_scan_forward<T>(const ScanDims&, const ScanInputs<T>&, T*, float*, const ScanOptions&, \
                                          cudaStream_t);                                                       \
  template void selective_scan_backward<T>(const ScanDims&, const ScanInputs<T>&, const T*, const float*,       \
                                           const ScanGrads<T>&, const ScanOptions&, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
