// The selective scan on the GPU: fused, with the state in registers.
//
// A block owns 32 consecutive channels of one sequence and walks time in tiles. G
// neighbouring threads share a channel (4 for dstate 16), each holding dstate / G of its
// states in registers, so a step of the recurrence is a few fused multiply-adds and one
// exp2 per state. Inputs are laid out (batch, len, dim): a tile of u / delta / z is 32
// consecutive channels per step, loaded up to 16 bytes per thread one tile ahead, turned
// into fp32 (softplus, gates) once per element in shared memory, and B_t / C_t are
// broadcast from shared memory to every channel. Sums over a channel's states (y, and the
// backward's dt terms) go through shared memory as per-thread partials, so no step waits
// on a shuffle.
//
// Forward: one pass; saves the state every `checkpoint_every` steps (fp32, the only state
// that reaches device memory) when a backward will follow.
// Backward: walks the chunks between checkpoints from the last to the first. For a chunk it
// recomputes the forward once to get the states at the start of each 8-step tile (kept in
// an L2-resident scratch), then for each tile from the last: recomputes the tile's states
// into shared memory, walks it backwards with the adjoint state in registers (storing the
// adjoints), and writes du, ddelta, dz. dB and dC are sums over channels of adjoint · dt·u
// and state · dy: one pass over the stored tile per block, then per-block partials summed
// in a fixed order (deterministic) or fp32 atomics.
//
// When batch × channels cannot fill the GPU, both split each sequence into parts that run
// side by side (sequence_parallel.cuh); the shared building blocks are in scan_tiles.cuh.
#include <algorithm>

#include "../../core/cuda_check.h"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "scan_tiles.cuh"
#include "sequence_parallel.cuh"

namespace ml::cuda {
namespace {

// ---------------------------------------------------------------------------------------
// Forward

template <int N>
struct __align__(16) ForwardShared {
  float2 step[kFwdSteps * kPairRow];  // (softplus(delta + bias), dt · u) at pair_at(t, c)
  float yp[kFwdSteps * Layout<N>::S];  // each thread's share of ⟨C_t, h_t⟩, at part(t, g, c)
  float bc[2 * kFwdSteps * N];         // BCTile
  float bias[kChannels], D[kChannels];
};

// kEndsOnly: the first pass over a sequence split into parts (sequence_parallel.cuh): each of
// the parts but the last scans from zero and writes only its end state and total decay.
// Otherwise part blockIdx.z scans from its start state, writing outputs and checkpoints.
template <typename T, int N, bool kEndsOnly>
__global__ void __launch_bounds__(Layout<N>::kThreads)
    scan_forward_kernel(ScanDims d, ScanInputs<T, float> in, T* __restrict__ out, float* __restrict__ ckpt, int ckpt_every,
                        float* __restrict__ final_state, SequenceParts parts, PartEnds ends) {
  constexpr int G = Layout<N>::G, NS = Layout<N>::NS;
  using R = Roles<kFwdSteps, N>;
  using BC = BCRun<kFwdSteps, N>;
  using Tile = BCTile<T, kFwdSteps, N, false>;
  constexpr int kPer = R::kPer;
  __shared__ ForwardShared<N> sh;
  const int64_t b = blockIdx.y, c0 = int64_t(blockIdx.x) * kChannels;
  const int part = blockIdx.z;
  const R me(c0, d.dim);
  if (threadIdx.x < kChannels) {
    const int64_t c = c0 + threadIdx.x;
    sh.bias[threadIdx.x] = c < d.dim ? in.delta_bias[c] : 0.f;
    sh.D[threadIdx.x] = c < d.dim ? in.D[c] : 0.f;
  }
  float A2[NS], h[NS];
#pragma unroll
  for (int j = 0; j < NS; ++j) A2[j] = me.ch_ok ? in.A[me.ch * N + me.g * NS + j] * kLog2e : 0.f;
  parts.load_start(b, part, d.dim, N, me.ch_ok ? me.ch : -1, me.g * NS, h);
  const int begin = parts.begin(part), end = parts.end(part, int(d.len));
  const int n_ckpt = int((d.len + ckpt_every - 1) / ckpt_every);
  // This thread's element run at step 0; step t is t·dim further.
  const int64_t at0 = me.at(d, b, 0, c0);
  float* ckpt_at = ckpt ? ckpt + ((b * n_ckpt + begin / ckpt_every) * d.dim + me.ch) * N + me.g * NS : nullptr;
  const int64_t ckpt_stride = d.dim * N;
  int next_ckpt = begin;  // the step whose initial state is saved next (parts start on checkpoints)
  float dt_sum = 0.f;     // kEndsOnly: Σ dt over the part, for its total decay

  Run<T, kPer> ru, rd, rz;
  Run<T, BC::kPer> rB, rC;
  auto load_tile = [&](int t0) {
    const int valid = t0 + me.row < end ? me.cols_valid : 0;
    const int64_t at = at0 + int64_t(t0) * d.dim;
    load_run(ru, in.u + at, valid);
    load_run(rd, in.delta + at, valid);
    const int steps = steps_left(kFwdSteps, end - t0);
    BC::load(rB, in.B, b, d.len, t0, steps);
    if constexpr (!kEndsOnly) {
      load_run(rz, in.z + at, valid);
      BC::load(rC, in.C, b, d.len, t0, steps);
    }
  };
  load_tile(begin);
  __syncthreads();  // sh.bias, sh.D

  for (int t0 = begin; t0 < end; t0 += kFwdSteps) {
    const int steps = steps_left(kFwdSteps, end - t0);
    // Elementwise, once per element: dt, dt·u for the scan; the skip and gate for the output.
    float skip[kPer], gate[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int c = me.col + e;
      const float dt = softplus_fast(rd.at(e) + sh.bias[c]), u = ru.at(e);
      sh.step[pair_at(me.row, c)] = make_float2(dt, dt * u);
      if constexpr (!kEndsOnly) {
        const float z = rz.at(e);
        skip[e] = sh.D[c] * u;
        gate[e] = z * sigmoid_fast(z);
      }
    }
    Tile::store(sh.bc, rB, rC, !kEndsOnly);
    __syncthreads();
    if (t0 + kFwdSteps < end) load_tile(t0 + kFwdSteps);  // in flight during the scan

    if constexpr (kEndsOnly) {
      scan_span<kFwdSteps>(
          0, steps, A2, h,
          [&](int t, StepOperands<NS>& op) {
            const float2 p = sh.step[pair_at(t, me.sc)];
            op.dt = p.x;
            op.x = p.y;
            Tile::load_b(sh.bc, t, me.g, op.B);
          },
          [&](int, const StepOperands<NS>& op, const float(&)[NS]) { dt_sum += op.dt; });
    } else {
      for (int s0 = 0; s0 < steps; s0 += kCheckpointGrid) {
        if (t0 + s0 == next_ckpt) {  // the state before this step starts a chunk
          if (ckpt && me.ch_ok) store_floats(ckpt_at, h);
          ckpt_at += ckpt_stride;
          next_ckpt += ckpt_every;
        }
        const int s1 = min(steps, s0 + kCheckpointGrid);
        scan_span<kCheckpointGrid>(
            s0, s1, A2, h,
            [&](int t, StepOperands<NS>& op) {
              const float2 p = sh.step[pair_at(t, me.sc)];
              op.dt = p.x;
              op.x = p.y;
              Tile::load(sh.bc, t, me.g, op.B, op.C);
            },
            // summed over the channel's G threads in the epilogue
            [&](int t, const StepOperands<NS>& op, const float(&hs)[NS]) {
              sh.yp[Layout<N>::part(t, me.g, me.sc)] = dot_states(op.C, hs);
            });
      }
    }
    __syncthreads();

    if constexpr (!kEndsOnly) {
      float o[kPer];
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        float y = 0.f;
#pragma unroll
        for (int g = 0; g < G; ++g) y += sh.yp[Layout<N>::part(me.row, g, me.col + e)];
        o[e] = (y + skip[e]) * gate[e];
      }
      if (me.row < steps) store_run(out + at0 + int64_t(t0) * d.dim, o, me.cols_valid);
    }
    // No barrier needed here: the next tile writes the step pairs and sh.bc, which
    // nobody reads after the barrier above, and sh.yp only after its own barrier.
  }
  if constexpr (kEndsOnly) {
    if (me.ch_ok) ends.store(b, part, d.dim, N, me.ch, me.g * NS, h, A2, dt_sum);
  } else if (final_state && me.ch_ok && part + 1 == parts.count) {
    store_floats(final_state + (b * d.dim + me.ch) * N + me.g * NS, h);
  }
}

// ---------------------------------------------------------------------------------------
// Backward

// p[0, NS) += v as one vector atomic where the GPU has them (compute capability 9.0).
template <int NS>
__device__ __forceinline__ void add_floats(float* p, const float (&v)[NS]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr bool kVector = true;
#else
  constexpr bool kVector = false;
#endif
  if constexpr (kVector && NS == 4) {
    atomicAdd(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
  } else if constexpr (kVector && NS == 2) {
    atomicAdd(reinterpret_cast<float2*>(p), make_float2(v[0], v[1]));
  } else {
#pragma unroll
    for (int j = 0; j < NS; ++j) atomicAdd(p + j, v[j]);
  }
}

// Shared memory of the backward, carved from one dynamic allocation (every piece a multiple
// of 16 bytes, so vector accesses stay aligned).
template <int N>
struct BackwardShared {
  static constexpr int NS = Layout<N>::NS, kThreads = Layout<N>::kThreads;
  // Sizes rounded up to 4 floats so that every piece stays 16-byte aligned.
  static constexpr int kRowsPadded = (kBwdSteps * kRow + 3) / 4 * 4;
  static constexpr int kPartsPadded = (kBwdSteps * Layout<N>::S + 3) / 4 * 4;
  float *dt, *dtu, *dy;     // [kBwdSteps][kRow]; dy = dout·silu(z)
  float *yp, *shap, *sgbp;  // [kBwdSteps · S] at part(t, g, c): per-thread shares of ⟨C, h⟩, Σ q·A, Σ gh·B
  float *bc;                // [2 · kBwdSteps · N]: BCTile
  float *h;                 // [kBwdSteps + 1][kThreads][NS]: h[0] is the tile's initial state
  float *gh;                // [kBwdSteps][kThreads][NS]: the adjoint dLoss/dh_t
  float *bias, *D;          // [kChannels]

  static constexpr size_t bytes() {
    return sizeof(float) * (3 * kRowsPadded + 3 * kPartsPadded + 2 * kBwdSteps * N +
                            (2 * kBwdSteps + 1) * kThreads * NS + 2 * kChannels);
  }
  __device__ explicit BackwardShared(float* p) {
    auto take = [&p](int n) {
      float* q = p;
      p += n;
      return q;
    };
    dt = take(kRowsPadded);
    dtu = take(kRowsPadded);
    dy = take(kRowsPadded);
    yp = take(kPartsPadded);
    shap = take(kPartsPadded);
    sgbp = take(kPartsPadded);
    bc = take(2 * kBwdSteps * N);
    h = take((kBwdSteps + 1) * kThreads * NS);
    gh = take(kBwdSteps * kThreads * NS);
    bias = take(kChannels);
    D = take(kChannels);
  }
  __device__ float* state(int t) { return h + (t * kThreads + threadIdx.x) * NS; }
  __device__ float* adjoint(int t) { return gh + (t * kThreads + threadIdx.x) * NS; }
};

// The order in which the backward visits tiles: chunks from the last; in each, the forward
// pass over all its tiles but the last (to find where each tile starts), then the backward
// of its tiles from the last. Knowing the next tile lets its inputs load during this one.
struct TileCursor {
  int k = -1;         // chunk (−1: done)
  int r = 0;          // tile within the chunk
  bool main = false;  // false: forward pass 1; true: the tile's backward
  bool first = false; // first visit of chunk k: its checkpoint is needed
  int tiles = 0;      // tiles in chunk k

  __device__ static int tiles_of(int k, int len, int every) {
    return (min(every, len - k * every) + kBwdSteps - 1) / kBwdSteps;
  }
  __device__ static TileCursor start_of(int k, int len, int every) {
    TileCursor c;
    c.k = k;
    c.tiles = tiles_of(k, len, every);
    c.main = c.tiles == 1;
    c.r = 0;
    c.first = true;
    return c;
  }
  // k_first: the chunk the block's part of the sequence starts with.
  __device__ TileCursor next(int len, int every, int k_first) const {
    TileCursor c = *this;
    c.first = false;
    if (!main) {
      if (r + 2 < tiles) {
        ++c.r;
      } else {
        c.main = true;
        c.r = tiles - 1;
      }
    } else if (r > 0) {
      --c.r;
    } else {
      c = k > k_first ? start_of(k - 1, len, every) : TileCursor{};
    }
    return c;
  }
  __device__ bool valid() const { return k >= 0; }
  __device__ int t0(int every) const { return k * every + r * kBwdSteps; }
};

// At least 3 blocks per SM (at most 168 registers): the benchmark shape's 384 blocks then
// run in one wave on 132 SMs.
constexpr int kBackwardBlocksPerSM = 3;

template <typename T, int N>
__global__ void __launch_bounds__(Layout<N>::kThreads, kBackwardBlocksPerSM)
    scan_backward_kernel(ScanDims d, ScanInputs<T, float> in, const T* __restrict__ dout, const float* __restrict__ ckpt,
                         int ckpt_every, ScanGrads<T, float> grads, float* __restrict__ sub, float* __restrict__ dbc,
                         float* __restrict__ param_partial, bool deterministic, SequenceParts parts) {
  constexpr int G = Layout<N>::G, NS = Layout<N>::NS, kThreads = Layout<N>::kThreads;
  using R = Roles<kBwdSteps, N>;
  using BC = BCRun<kBwdSteps, N>;
  using Tile = BCTile<T, kBwdSteps, N, true>;
  constexpr int kPer = R::kPer;
  extern __shared__ float4 smem4[];
  BackwardShared<N> sh(reinterpret_cast<float*>(smem4));
  const int64_t b = blockIdx.y, c0 = int64_t(blockIdx.x) * kChannels;
  const int part = blockIdx.z, len = int(d.len), n_ckpt = (len + ckpt_every - 1) / ckpt_every;
  // The chunks of this block's part (parts start on checkpoints).
  const int k_first = parts.begin(part) / ckpt_every, k_last = (parts.end(part, len) - 1) / ckpt_every;
  // One row of parameter partials per (sequence, part).
  const int64_t partial_row = b * parts.count + part, partial_rows = d.batch * parts.count;
  const R me(c0, d.dim);
  if (threadIdx.x < kChannels) {
    const int64_t c = c0 + threadIdx.x;
    sh.bias[threadIdx.x] = c < d.dim ? in.delta_bias[c] : 0.f;
    sh.D[threadIdx.x] = c < d.dim ? in.D[c] : 0.f;
  }
  // This thread's states at the starts of the tiles of the current chunk (pass 1 writes,
  // the tiles' backward reads; only this thread touches its slots, and they stay in L2).
  const int64_t block = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  float* my_sub = sub + (block * (ckpt_every / kBwdSteps) * kThreads + threadIdx.x) * NS;
  auto sub_at = [&](int r) { return my_sub + int64_t(r) * kThreads * NS; };

  float A2[NS], carry[NS], dA[NS];  // carry: a_{t+1}·(dLoss/dh_{t+1}), the adjoint state
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    A2[j] = me.ch_ok ? in.A[me.ch * N + me.g * NS + j] * kLog2e : 0.f;
    dA[j] = 0.f;
  }
  parts.load_start(b, part, d.dim, N, me.ch_ok ? me.ch : -1, me.g * NS, carry);
  float dD[kPer], dbias[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) dD[e] = dbias[e] = 0.f;

  // This thread's element run at step 0; each tile is kBwdSteps·dim further.
  const int64_t at0 = me.at(d, b, 0, c0), tile_stride = int64_t(kBwdSteps) * d.dim;
  // Inputs of the next tile, loaded one tile ahead.
  Run<T, kPer> ru, rd, rz, ro;
  Run<T, BC::kPer> rB, rC;
  float hc_next[NS], hc[NS], h0[NS], h[NS];  // checkpoint ahead; chunk start; next tile start; pass-1 state
  auto prefetch = [&](const TileCursor& c, bool from_main) {
    const int t0 = c.t0(ckpt_every), steps = steps_left(kBwdSteps, len - t0);
    const int valid = me.row < steps ? me.cols_valid : 0;
    const int64_t at = at0 + (t0 / kBwdSteps) * tile_stride;
    load_run(ru, in.u + at, valid);
    load_run(rd, in.delta + at, valid);
    BC::load(rB, in.B, b, d.len, t0, steps);
    if (c.main) {
      load_run(rz, in.z + at, valid);
      load_run(ro, dout + at, valid);
      BC::load(rC, in.C, b, d.len, t0, steps);
    }
    if (c.first) {
      if (me.ch_ok) {
        load_floats(ckpt + ((b * n_ckpt + c.k) * d.dim + me.ch) * N + me.g * NS, hc_next);
      } else {
#pragma unroll
        for (int j = 0; j < NS; ++j) hc_next[j] = 0.f;
      }
    }
    if (c.main && from_main && c.r > 0) load_floats(sub_at(c.r - 1), h0);  // written long before
  };

  __syncthreads();  // sh.bias, sh.D
  TileCursor cur = TileCursor::start_of(k_last, len, ckpt_every);
  prefetch(cur, false);
  for (; cur.valid();) {
    const TileCursor nxt = cur.next(len, ckpt_every, k_first);
    const int t0 = cur.t0(ckpt_every), steps = steps_left(kBwdSteps, len - t0);
    if (cur.first) {
#pragma unroll
      for (int j = 0; j < NS; ++j) h[j] = hc[j] = hc_next[j];
    }
    if (cur.main && cur.r == 0) {
#pragma unroll
      for (int j = 0; j < NS; ++j) h0[j] = hc[j];
    }

    // Into shared memory: dt, dt·u, B (and dy, C); the element phase's values stay here.
    float u[kPer], z[kPer], o[kPer], sig_z[kPer], sig_pre[kPer];
    __syncthreads();  // the previous tile's readers are done
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int c = me.col + e, s = me.row * kRow + c;
      const float dt = softplus_fast(rd.at(e) + sh.bias[c], &sig_pre[e]);
      u[e] = ru.at(e);
      sh.dt[s] = dt;
      sh.dtu[s] = dt * u[e];
      if (cur.main) {
        z[e] = rz.at(e);
        o[e] = ro.at(e);
        sig_z[e] = sigmoid_fast(z[e]);
        sh.dy[s] = o[e] * z[e] * sig_z[e];
      }
    }
    Tile::store(sh.bc, rB, rC);  // C is stale in pass 1, which does not read it
    if (cur.main) store_floats(sh.state(0), h0);
    if (nxt.valid()) prefetch(nxt, cur.main);
    __syncthreads();

    if (!cur.main) {
      // Pass 1: forward through a whole tile; its end state starts the next.
      scan_steps<kBwdSteps>(
          0, kBwdSteps, A2, h,
          [&](int t, StepOperands<NS>& op) {
            op.dt = sh.dt[t * kRow + me.sc];
            op.x = sh.dtu[t * kRow + me.sc];
            Tile::load_b(sh.bc, t, me.g, op.B);
          },
          [](int, const StepOperands<NS>&, const float(&)[NS]) {});
      if (cur.r + 2 == cur.tiles) {  // the next visit is the backward of the tile this state starts
#pragma unroll
        for (int j = 0; j < NS; ++j) h0[j] = h[j];
      } else {
        store_floats(sub_at(cur.r), h);
      }
      cur = nxt;
      continue;
    }

    // Forward through the tile again, keeping every state in shared memory (this thread's
    // slots only) for the dB, dC pass. A full tile also keeps them in registers, so that the
    // walk back reads its h_{t−1} there (one 16-byte shared load per step less).
    const bool full = steps == kBwdSteps;
    float hr[kBwdSteps][NS];  // full tiles: the state before each step
    {
      float hs[NS];  // from shared memory: h0 may already hold the next tile's start
      load_floats(sh.state(0), hs);
      auto load = [&](int t, StepOperands<NS>& op) {
        op.dt = sh.dt[t * kRow + me.sc];
        op.x = sh.dtu[t * kRow + me.sc];
        Tile::load(sh.bc, t, me.g, op.B, op.C);
      };
      auto keep = [&](int t, const StepOperands<NS>& op, const float(&h_t)[NS]) {
        store_floats(sh.state(t + 1), h_t);
        sh.yp[Layout<N>::part(t, me.g, me.sc)] = dot_states(op.C, h_t);
      };
      if (full) {
#pragma unroll
        for (int j = 0; j < NS; ++j) hr[0][j] = hs[j];
        scan_steps<kBwdSteps>(0, kBwdSteps, A2, hs, load,
                              [&](int t, const StepOperands<NS>& op, const float(&h_t)[NS]) {
                                keep(t, op, h_t);
                                if (t + 1 < kBwdSteps) {
#pragma unroll
                                  for (int j = 0; j < NS; ++j) hr[t + 1][j] = h_t[j];
                                }
                              });
      } else {
        scan_steps<0>(0, steps, A2, hs, load, keep);
      }
    }

    // Backwards through the tile: the adjoint state in registers, each step's adjoint kept.
    {
      StepOperands<NS> next;
      float next_hprev[NS], a_next[NS];
      // shared_states (std::true_type or false_type): h_{t−1} from shared memory, else from hr.
      auto fetch = [&](int t, auto shared_states) {
        next.dt = sh.dt[t * kRow + me.sc];
        next.x = sh.dy[t * kRow + me.sc];
        Tile::load(sh.bc, t, me.g, next.B, next.C);
        if constexpr (decltype(shared_states)::value) load_floats(sh.state(t), next_hprev);
#pragma unroll
        for (int j = 0; j < NS; ++j) a_next[j] = exp2_approx(next.dt * A2[j]);
      };
      auto walk = [&](int t, bool more, int t_next, auto shared_states) {
        const StepOperands<NS> op = next;
        float hprev[NS], g[NS], a[NS];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
          if constexpr (decltype(shared_states)::value)
            hprev[j] = next_hprev[j];
          else
            hprev[j] = hr[t][j];
          a[j] = a_next[j];
        }
        if (more) fetch(t_next, shared_states);
        const float dt = op.dt, dy = op.x;
        float sha = 0.f, sgb = 0.f;
#pragma unroll
        for (int j = 0; j < NS; ++j) {
          g[j] = fmaf(dy, op.C[j], carry[j]);  // dLoss/dh_t
          carry[j] = a[j] * g[j];
          const float q = carry[j] * hprev[j];  // times A: dLoss/d(dt) through the decay; times dt: dLoss/dA
          sha = fmaf(q, A2[j], sha);
          dA[j] = fmaf(q, dt, dA[j]);
          sgb = fmaf(g[j], op.B[j], sgb);
        }
        store_floats(sh.adjoint(t), g);
        sh.shap[Layout<N>::part(t, me.g, me.sc)] = sha * kLn2;
        sh.sgbp[Layout<N>::part(t, me.g, me.sc)] = sgb;
      };
      if (full) {  // unrolled: constant offsets, states from registers
        fetch(kBwdSteps - 1, std::false_type{});
#pragma unroll
        for (int t = kBwdSteps - 1; t >= 0; --t) walk(t, t > 0, t - 1, std::false_type{});
      } else {
        fetch(steps - 1, std::true_type{});
#pragma unroll 2
        for (int t = steps - 1; t >= 0; --t) walk(t, true, max(t - 1, 0), std::true_type{});
      }
    }
    __syncthreads();

    // Per element: du, ddelta, dz from the channel's shares; dD and ddelta_bias in registers.
    {
      float du[kPer], ddelta[kPer], dz[kPer];
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int c = me.col + e, s = me.row * kRow + c;
        float y = 0.f, sha = 0.f, sgb = 0.f;
#pragma unroll
        for (int k = 0; k < G; ++k) {
          const int p = Layout<N>::part(me.row, k, c);
          y += sh.yp[p];
          sha += sh.shap[p];
          sgb += sh.sgbp[p];
        }
        const float sz = sig_z[e], dy = sh.dy[s];
        dz[e] = o[e] * (y + sh.D[c] * u[e]) * sz * (1.f + z[e] * (1.f - sz));
        du[e] = dy * sh.D[c] + sgb * sh.dt[s];
        ddelta[e] = (sha + sgb * u[e]) * sig_pre[e];
        if (me.row < steps) {
          dD[e] += dy * u[e];
          dbias[e] += ddelta[e];
        }
      }
      if (me.row < steps) {
        const int64_t at = at0 + (t0 / kBwdSteps) * tile_stride;
        store_run(grads.du + at, du, me.cols_valid);
        store_run(grads.ddelta + at, ddelta, me.cols_valid);
        store_run(grads.dz + at, dz, me.cols_valid);
      }
    }

    // dB_t = Σ_c gh_t·dt·u and dC_t = Σ_c h_t·dy over this block's channels: a pair of
    // threads per (step, B or C, state group), each taking every other channel.
    {
      const int q = threadIdx.x >> 1, half = threadIdx.x & 1;
      const int t = q / (2 * G), kind = (q / G) & 1, grp = q % G;
      float acc[NS];
#pragma unroll
      for (int j = 0; j < NS; ++j) acc[j] = 0.f;
      if (t < steps) {
        const float* src = kind == 0 ? sh.gh + t * kThreads * NS : sh.h + (t + 1) * kThreads * NS;
        const float* w = (kind == 0 ? sh.dtu : sh.dy) + t * kRow;
#pragma unroll 4
        for (int i = 0; i < kChannels / 2; ++i) {
          const int c = 2 * i + half;
          float v[NS];
          load_floats(src + (c * G + grp) * NS, v);
          const float wc = w[c];
#pragma unroll
          for (int j = 0; j < NS; ++j) acc[j] = fmaf(v[j], wc, acc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < NS; ++j) acc[j] += __shfl_xor_sync(kFull, acc[j], 1);
      if (half == 0 && t < steps) {
        const int64_t out = ((b * d.len + t0 + t) * 2 + kind) * N + grp * NS;
        if (deterministic) {
          store_floats(dbc + int64_t(blockIdx.x) * d.batch * d.len * 2 * N + out, acc);
        } else {
          add_floats(dbc + out, acc);
        }
      }
    }
    cur = nxt;
  }

  // Parameter gradients: dA per (channel, state) from the scan role; dD and ddelta_bias per
  // channel from the element role, whose kBwdSteps rows are summed in row order first.
  if (me.ch_ok) {
#pragma unroll
    for (int j = 0; j < NS; ++j) {
      const int64_t i = me.ch * N + me.g * NS + j;
      if (deterministic)
        param_partial[partial_row * d.dim * N + i] = dA[j];
      else
        atomicAdd(grads.dA + i, dA[j]);
    }
  }
  __syncthreads();
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    sh.dt[me.row * kRow + me.col + e] = dD[e];
    sh.dtu[me.row * kRow + me.col + e] = dbias[e];
  }
  __syncthreads();
  if (threadIdx.x < kChannels && c0 + threadIdx.x < d.dim) {
    float sd = 0.f, sb = 0.f;
    for (int row = 0; row < kBwdSteps; ++row) {
      sd += sh.dt[row * kRow + threadIdx.x];
      sb += sh.dtu[row * kRow + threadIdx.x];
    }
    const int64_t c = c0 + threadIdx.x;
    if (deterministic) {
      float* dD_part = param_partial + partial_rows * d.dim * N;
      dD_part[partial_row * d.dim + c] = sd;
      dD_part[(partial_rows + partial_row) * d.dim + c] = sb;
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
  // The forward looks for checkpoints every kCheckpointGrid steps, the backward walks kBwdSteps-step tiles.
  static_assert(kCheckpointGrid % kBwdSteps == 0 && kFwdSteps % kCheckpointGrid == 0, "checkpoint grid");
  ML_CHECK(o.checkpoint_every >= kCheckpointGrid && o.checkpoint_every % kCheckpointGrid == 0 && o.checkpoint_every <= (1 << 20),
           op, ": checkpoint_every must be a positive multiple of ", kCheckpointGrid, ", got ", o.checkpoint_every);
  ML_CHECK(d.batch <= 65535, op, ": batch ", d.batch, " exceeds one launch");
  ML_CHECK(d.len < (int64_t{1} << 31) - o.checkpoint_every, op, ": len ", d.len, " exceeds 2^31 steps");
}

// Sequences are split only when the scan would offer fewer than kSplitBelow blocks per
// multiprocessor (H200, bf16: b8 d1536 l2048's 384 blocks run 18% slower in 4 parts, while
// 4 x 16384 x 1024's 128 blocks run 1.6x faster in 32), then into enough parts for
// kPartBlocks blocks per multiprocessor, none shorter than kMinPartSteps. Measured in
// bench/results/2026-12-03-h200-scan-parts.json; 24 rather than 16 blocks an SM (shorter parts,
// the last wave of blocks less ragged) took 2-3% off at 1 x 65536 and 1 x 131072
// (bench/results/2026-12-04-h200-scan-part-counts.json); trimming a last wave of backward
// blocks at most half full another 1.3% at 1 x 131072 (50 parts to 49:
// bench/results/2026-12-04-h200-scan-pass1-spans-experiment.json, variants s4v and new).
constexpr int64_t kSplitBelow = 2;
constexpr int64_t kPartBlocks = 24;
constexpr int64_t kMinPartSteps = 512;

// How the scan splits each sequence (sequence_parallel.cuh): count parts of `steps` steps
// (a whole number of checkpoint chunks), the last one possibly shorter.
struct PartPlan {
  int count = 1, steps = 0;
};

// About `want` parts of whole chunks (fewer when the chunks do not divide evenly).
PartPlan plan_for(const ScanDims& d, const ScanOptions& o, int64_t want) {
  const int64_t chunks = (d.len + o.checkpoint_every - 1) / o.checkpoint_every;
  want = std::clamp<int64_t>(want, 1, std::min<int64_t>(chunks, 65535));
  if (want == 1) return {};
  const int64_t chunks_per_part = (chunks + want - 1) / want;
  return {int((chunks + chunks_per_part - 1) / chunks_per_part), int(chunks_per_part * o.checkpoint_every)};
}

PartPlan plan_parts(const ScanDims& d, const ScanOptions& o, const char* op) {
  if (o.segments != 0) return plan_for(d, o, o.segments);
  int device = 0, multiprocessors = 0;
  ML_CUDA_CHECK(op, cudaGetDevice(&device));
  ML_CUDA_CHECK(op, cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  const int64_t blocks = d.batch * ((d.dim + kChannels - 1) / kChannels);
  if (blocks >= kSplitBelow * multiprocessors) return {};
  const int64_t want = (kPartBlocks * multiprocessors + blocks - 1) / blocks;
  PartPlan plan = plan_for(d, o, std::min(want, d.len / kMinPartSteps));
  // A last wave of backward blocks that is at most half full costs nearly a whole wave: then
  // take no more parts than the full waves hold.
  const int64_t slots = kBackwardBlocksPerSM * multiprocessors, total = plan.count * blocks, tail = total % slots;
  if (total > slots && tail > 0 && tail <= slots / 2) plan = plan_for(d, o, total / slots * slots / blocks);
  return plan;
}

dim3 grid_of(const ScanDims& d, int parts) {
  return dim3(unsigned((d.dim + kChannels - 1) / kChannels), unsigned(d.batch), unsigned(parts));
}

// The first pass and the chain of sequence_parallel.cuh, run by `first_pass(grid, ends)`: the
// state (or adjoint) every part starts from, in `starts`.
template <typename FirstPass>
void chain_parts(const ScanDims& d, const PartPlan& plan, bool reverse, DeviceBuffer<float>& starts,
                 FirstPass first_pass, cudaStream_t stream, const char* op) {
  const int64_t per_batch = d.dim * d.dstate, entries = d.batch * (plan.count - 1) * per_batch;
  DeviceBuffer<float> end(entries, op), decay(entries, op);
  starts = DeviceBuffer<float>(d.batch * plan.count * per_batch, op);
  first_pass(grid_of(d, plan.count - 1), PartEnds{plan.count - 1, end.get(), decay.get()});
  ML_CUDA_CHECK_LAUNCH(op);
  chain_parts_kernel<<<blocks_for(d.batch * per_batch, 256), 256, 0, stream>>>(end.get(), decay.get(), plan.count,
                                                                               d.batch, per_batch, reverse, starts.get());
  ML_CUDA_CHECK_LAUNCH(op);
}

template <typename T, int N>
void launch_forward(const ScanDims& d, const ScanInputs<T, float>& in, T* out, float* ckpt, const ScanOptions& o,
                    cudaStream_t stream, float* final_state) {
  constexpr const char* op = "selective_scan_forward";
  const PartPlan plan = plan_parts(d, o, op);
  const int every = int(o.checkpoint_every);
  SequenceParts parts{plan.count, plan.steps, nullptr};
  DeviceBuffer<float> starts;
  if (plan.count > 1) {
    chain_parts(d, plan, false, starts, [&](dim3 grid, PartEnds ends) {
      scan_forward_kernel<T, N, true><<<grid, Layout<N>::kThreads, 0, stream>>>(d, in, nullptr, nullptr, every,
                                                                                 nullptr, parts, ends);
    }, stream, op);
    parts.start = starts.get();
  }
  scan_forward_kernel<T, N, false><<<grid_of(d, plan.count), Layout<N>::kThreads, 0, stream>>>(
      d, in, out, ckpt, every, final_state, parts, PartEnds{});
  ML_CUDA_CHECK_LAUNCH(op);
}

template <typename T, int N>
void launch_backward(const ScanDims& d, const ScanInputs<T, float>& in, const T* dout, const float* ckpt,
                     const ScanGrads<T, float>& g, const ScanOptions& o, cudaStream_t stream) {
  constexpr const char* op = "selective_scan_backward";
  const PartPlan plan = plan_parts(d, o, op);
  SequenceParts seq{plan.count, plan.steps, nullptr};
  DeviceBuffer<float> starts;
  if (plan.count > 1) {
    chain_parts(d, plan, true, starts, [&](dim3 grid, PartEnds ends) {
      adjoint_ends_kernel<T, N><<<grid, Layout<N>::kThreads, 0, stream>>>(d, in, dout, seq, ends);
    }, stream, op);
    seq.start = starts.get();
  }
  const int64_t blocks_c = (d.dim + kChannels - 1) / kChannels, rows = d.batch * d.len;
  const int64_t parts = o.deterministic ? blocks_c : 1, partial_rows = d.batch * plan.count;
  DeviceBuffer<float> dbc(parts * rows * 2 * N, op);
  DeviceBuffer<float> param_partial(o.deterministic ? partial_rows * d.dim * (N + 2) : 0, op);
  DeviceBuffer<float> sub(
      partial_rows * blocks_c * (o.checkpoint_every / kBwdSteps) * Layout<N>::kThreads * Layout<N>::NS, op);
  if (!o.deterministic)
    ML_CUDA_CHECK("selective_scan_backward", cudaMemsetAsync(dbc.get(), 0, dbc.bytes(), stream));
  constexpr size_t smem = BackwardShared<N>::bytes();
  auto kernel = scan_backward_kernel<T, N>;
  ML_CUDA_CHECK("selective_scan_backward",
                cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid_of(d, plan.count), Layout<N>::kThreads, smem, stream>>>(
      d, in, dout, ckpt, int(o.checkpoint_every), g, sub.get(), dbc.get(), param_partial.get(), o.deterministic, seq);
  ML_CUDA_CHECK_LAUNCH("selective_scan_backward");
  scan_dbc_kernel<T><<<blocks_for(rows * 2 * N, 256), 256, 0, stream>>>(dbc.get(), parts, rows, N, g.dB, g.dC);
  ML_CUDA_CHECK_LAUNCH("selective_scan_backward");
  if (o.deterministic) {
    const float* p = param_partial.get();
    sum_partials(p, partial_rows, d.dim * N, g.dA, true, stream, op);
    sum_partials(p + partial_rows * d.dim * N, partial_rows, d.dim, g.dD, true, stream, op);
    sum_partials(p + partial_rows * d.dim * (N + 1), partial_rows, d.dim, g.ddelta_bias, true, stream, op);
  }
}

}  // namespace

int64_t scan_checkpoint_elements(const ScanDims& d, const ScanOptions& o) {
  return d.batch * ((d.len + o.checkpoint_every - 1) / o.checkpoint_every) * d.dim * d.dstate;
}

int64_t scan_sequence_parts(const ScanDims& d, const ScanOptions& o) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return 1;
  check_dims(d, o, "scan_sequence_parts");
  return plan_parts(d, o, "scan_sequence_parts").count;
}

template <typename T>
void selective_scan_forward(const ScanDims& d, const ScanInputs<T, float>& in, T* out, float* ckpt, const ScanOptions& o,
                            cudaStream_t stream, float* final_state) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  check_dims(d, o, "selective_scan_forward");
  switch (d.dstate) {
    case 2: launch_forward<T, 2>(d, in, out, ckpt, o, stream, final_state); break;
    case 4: launch_forward<T, 4>(d, in, out, ckpt, o, stream, final_state); break;
    case 8: launch_forward<T, 8>(d, in, out, ckpt, o, stream, final_state); break;
    default: launch_forward<T, 16>(d, in, out, ckpt, o, stream, final_state); break;
  }
}

template <typename T>
void selective_scan_backward(const ScanDims& d, const ScanInputs<T, float>& in, const T* dout, const float* ckpt,
                             const ScanGrads<T, float>& g, const ScanOptions& o, cudaStream_t stream) {
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
  template void selective_scan_forward<T>(const ScanDims&, const ScanInputs<T, float>&, T*, float*, const ScanOptions&, \
                                          cudaStream_t, float*);                                               \
  template void selective_scan_backward<T>(const ScanDims&, const ScanInputs<T, float>&, const T*, const float*,       \
                                           const ScanGrads<T, float>&, const ScanOptions&, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
