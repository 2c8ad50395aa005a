// The selective scan over a sequence split into parts that run side by side, for when
// batch × channels cannot fill the GPU (one 65,536-step sequence of 1024 channels is 32
// blocks on 132 SMs, walking 65,536 steps each).
//
// The recurrence is linear in its state: a part that starts from h₀ ends in P ⊙ h₀ + e, where
// P = Π exp(dt·A) = exp(A·Σdt) over the part and e is where it ends from zero. So the forward
//   1. scans every part but the last from zero, keeping only (e, P)  (scan_forward_kernel, kEndsOnly)
//   2. chains them: h₀(k+1) = P_k ⊙ h₀(k) + e_k                       (chain_parts_kernel)
//   3. scans every part again from its true start, writing outputs and checkpoints.
// The backward's adjoint runs the other way with the same decays: every part but the first
// walks back from a zero adjoint (adjoint_ends_kernel), the chain runs from the last part, and
// each part's backward starts from its true adjoint. Steps 1 and 2 cost a fraction of a
// forward; they buy the parallelism a long sequence lacks.
#pragma once
#include "scan_tiles.cuh"

namespace ml::cuda {
namespace {

// How a block finds its part of the sequence and the state it starts from.
struct SequenceParts {
  int count = 1;  // parts per sequence
  int steps = 0;  // per part, a multiple of checkpoint_every (unused when count is 1)
  // (batch, count, dim, dstate): the state (forward) or adjoint (backward) each part starts
  // from; null: zero.
  const float* start = nullptr;

  __device__ int begin(int part) const { return count == 1 ? 0 : part * steps; }
  __device__ int end(int part, int len) const { return count == 1 ? len : min(len, (part + 1) * steps); }
  // This thread's NS states of channel ch (−1: a channel past the end) starting at state n0.
  template <int NS>
  __device__ void load_start(int64_t b, int part, int64_t dim, int64_t dstate, int64_t ch, int n0,
                             float (&h)[NS]) const {
    if (start && ch >= 0) {
      load_floats(start + ((b * count + part) * dim + ch) * dstate + n0, h);
    } else {
#pragma unroll
      for (int j = 0; j < NS; ++j) h[j] = 0.f;
    }
  }
};

// Where the first pass leaves each part: its end from zero (state or adjoint) and its total
// decay, both (batch, count, dim, dstate) for the count parts that have one.
struct PartEnds {
  int count = 0;
  float *end = nullptr, *decay = nullptr;

  // A2 = A·log2(e), so the decay exp(A·Σdt) is exp2(A2·Σdt).
  template <int NS>
  __device__ void store(int64_t b, int entry, int64_t dim, int64_t dstate, int64_t ch, int n0, const float (&h)[NS],
                        const float (&A2)[NS], float dt_sum) const {
    const int64_t at = ((b * count + entry) * dim + ch) * dstate + n0;
    float p[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j) p[j] = exp2f(A2[j] * dt_sum);
    store_floats(end + at, h);
    store_floats(decay + at, p);
  }
};

// For every (batch, channel, state): start(k+1) = decay_k ⊙ start(k) + end_k from start(0) = 0,
// entry k describing part k (forward); or, reverse, start(k) = decay_k ⊙ start(k+1) + end_k
// from start(last) = 0, entry k describing part k+1 (the backward's adjoint).
__global__ void chain_parts_kernel(const float* __restrict__ end, const float* __restrict__ decay, int parts,
                                   int64_t batch, int64_t per_batch, bool reverse, float* __restrict__ start) {
  const int64_t total = batch * per_batch;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per_batch, r = i % per_batch;
    auto entry = [&](int k) { return (b * (parts - 1) + k) * per_batch + r; };
    auto slot = [&](int k) { return (b * parts + k) * per_batch + r; };
    float h = 0.f;
    if (reverse) {
      start[slot(parts - 1)] = 0.f;
      for (int k = parts - 2; k >= 0; --k) {
        h = fmaf(decay[entry(k)], h, end[entry(k)]);
        start[slot(k)] = h;
      }
    } else {
      start[slot(0)] = 0.f;
      for (int k = 0; k + 1 < parts; ++k) {
        h = fmaf(decay[entry(k)], h, end[entry(k)]);
        start[slot(k + 1)] = h;
      }
    }
  }
}

// The backward's first pass: part blockIdx.z + 1 walks back from its last step with a zero
// adjoint, g_t = dy_t·C_t + carry, carry ← exp(dt_t·A) ⊙ g_t (dy = dout·silu(z)), and leaves
// the carry its first step hands to the part before it.
template <typename T, int N>
__global__ void __launch_bounds__(Layout<N>::kThreads)
    adjoint_ends_kernel(ScanDims d, ScanInputs<T, float> in, const T* __restrict__ dout, SequenceParts parts,
                        PartEnds ends) {
  constexpr int NS = Layout<N>::NS;
  using R = Roles<kFwdSteps, N>;
  using BC = BCRun<kFwdSteps, N>;
  constexpr int kPer = R::kPer;
  __shared__ __align__(16) float2 step[kFwdSteps * kPairRow];  // (dt, dy) at pair_at(t, c)
  __shared__ __align__(16) float cs[kFwdSteps * N];            // C_t
  __shared__ float bias[kChannels];
  const int64_t b = blockIdx.y, c0 = int64_t(blockIdx.x) * kChannels;
  const int part = blockIdx.z + 1;
  const R me(c0, d.dim);
  if (threadIdx.x < kChannels) bias[threadIdx.x] = c0 + threadIdx.x < d.dim ? in.delta_bias[c0 + threadIdx.x] : 0.f;
  float A2[NS], carry[NS];
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    A2[j] = me.ch_ok ? in.A[me.ch * N + me.g * NS + j] * kLog2e : 0.f;
    carry[j] = 0.f;
  }
  float dt_sum = 0.f;
  const int begin = parts.begin(part), end = parts.end(part, int(d.len));
  const int64_t at0 = me.at(d, b, 0, c0);

  Run<T, kPer> rd, rz, ro;
  Run<T, BC::kPer> rC;
  auto load_tile = [&](int t0) {
    const int valid = t0 + me.row < end ? me.cols_valid : 0;
    const int64_t at = at0 + int64_t(t0) * d.dim;
    load_run(rd, in.delta + at, valid);
    load_run(rz, in.z + at, valid);
    load_run(ro, dout + at, valid);
    BC::load(rC, in.C, b, d.len, t0, steps_left(kFwdSteps, end - t0));
  };
  const int last = begin + (end - begin - 1) / kFwdSteps * kFwdSteps;
  load_tile(last);
  __syncthreads();  // bias

  for (int t0 = last; t0 >= begin; t0 -= kFwdSteps) {
    const int steps = steps_left(kFwdSteps, end - t0);
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int c = me.col + e;
      const float z = rz.at(e);
      step[pair_at(me.row, c)] = make_float2(softplus_fast(rd.at(e) + bias[c]), ro.at(e) * z * sigmoid_fast(z));
    }
    if (BC::first() < BC::kTotal) {
      float cv[BC::kPer];
#pragma unroll
      for (int e = 0; e < BC::kPer; ++e) cv[e] = rC.at(e);
      store_floats(cs + BC::first(), cv);
    }
    __syncthreads();
    if (t0 - kFwdSteps >= begin) load_tile(t0 - kFwdSteps);  // in flight during the walk

#pragma unroll 8
    for (int t = steps - 1; t >= 0; --t) {
      const float2 p = step[pair_at(t, me.sc)];
      float C[NS];
      load_floats(cs + t * N + me.g * NS, C);
#pragma unroll
      for (int j = 0; j < NS; ++j) carry[j] = exp2_approx(p.x * A2[j]) * fmaf(p.y, C[j], carry[j]);
      dt_sum += p.x;
    }
    __syncthreads();  // the next tile overwrites step and cs
  }
  if (me.ch_ok) ends.store(b, part - 1, d.dim, N, me.ch, me.g * NS, carry, A2, dt_sum);
}

}  // namespace
}  // namespace ml::cuda
