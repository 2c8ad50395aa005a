// A group of kLanes threads per (sequence, channel): lane n holds states n, n + kLanes, … and
// the lanes split dt_proj's row, so neighbouring lanes read neighbouring words of h and of the
// weights (one thread per channel strided both by a whole row and starved a 4096-channel step
// of blocks: 17 µs on an H200 for what is 2 MB of traffic). The group's sums (delta, ⟨C, h⟩)
// are shuffles in a fixed order. fp32 math with the CPU reference's functions (expf, log1pf),
// as a step is too small for the fast forms to pay.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "selective_scan_step.h"

namespace ml::cuda {
namespace {

constexpr int kLanes = 16, kThreads = 256;

// Σ over the kLanes lanes of a group (groups are aligned within a warp).
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Projected (rank > 0): delta from the row's dt_low and the channel's dt_proj row, B and C
// from the same row. The weights (the lane's first kAheadRank of the dt_proj row, its first
// kAheadStates of A, D and the bias) are read before the chained wait: no kernel writes them,
// so they arrive while the kernel before ends.
constexpr int kAheadRank = 8, kAheadStates = 2;

template <typename T>
__global__ void scan_step_kernel(ScanStepDims d, ScanInputs<T, float> in, StepProjection<T> p, float* __restrict__ h,
                                 T* __restrict__ out) {
  const int64_t group = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kLanes;
  const int lane = int(threadIdx.x % kLanes);
  // Idle groups stay to the end: every lane of the warp takes part in the shuffles.
  const bool active = group < d.batch * d.dim;
  const int64_t i = active ? group : 0, b = i / d.dim, c = i % d.dim, N = d.dstate;
  const T* w = p.dt_weight + c * p.rank;
  float w_ahead[kAheadRank], a_ahead[kAheadStates];
#pragma unroll
  for (int k = 0; k < kAheadRank; ++k) {
    const int64_t r = lane + int64_t(k) * kLanes;
    w_ahead[k] = r < p.rank ? to_float(w[r]) : 0.f;
  }
  const float* A = in.A + c * N;
#pragma unroll
  for (int k = 0; k < kAheadStates; ++k) {
    const int64_t n = lane + int64_t(k) * kLanes;
    a_ahead[k] = n < N ? A[n] : 0.f;
  }
  const float D = in.D[c], bias = in.delta_bias[c];
  chain_wait();

  float delta;
  const T *B, *C;
  if (p.rank > 0) {
    const T* row = p.xproj + b * (p.rank + 2 * N);
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kAheadRank; ++k) {
      const int64_t r = lane + int64_t(k) * kLanes;
      if (r < p.rank) sum += to_float(row[r]) * w_ahead[k];
    }
    for (int64_t r = lane + int64_t(kAheadRank) * kLanes; r < p.rank; r += kLanes) sum += to_float(row[r]) * to_float(w[r]);
    delta = to_float(from_float<T>(group_sum(sum)));
    B = row + p.rank, C = row + p.rank + N;
  } else {
    delta = to_float(in.delta[i]);
    B = in.B + b * N, C = in.C + b * N;
  }
  const float dt = softplus32(delta + bias);
  const float x = to_float(in.u[i]);
  float* hc = h + i * N;
  float y = 0.f;
  const auto update = [&](int64_t n, float a) {
    const float hn = expf(dt * a) * hc[n] + dt * to_float(B[n]) * x;
    if (active) hc[n] = hn;
    y += to_float(C[n]) * hn;
  };
#pragma unroll
  for (int k = 0; k < kAheadStates; ++k)
    if (lane + int64_t(k) * kLanes < N) update(lane + int64_t(k) * kLanes, a_ahead[k]);
  for (int64_t n = lane + int64_t(kAheadStates) * kLanes; n < N; n += kLanes) update(n, A[n]);
  y = group_sum(y) + D * x;
  if (active && lane == 0) out[i] = from_float<T>(y * silu32(to_float(in.z[i])));
}

}  // namespace

template <typename T>
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T, float>& in, const StepProjection<T>& p, float* h,
                         T* out, cudaStream_t stream) {
  const int64_t threads = d.batch * d.dim * kLanes;
  if (threads <= 0) return;
  launch_chained("selective_scan_step", scan_step_kernel<T>, dim3(unsigned((threads + kThreads - 1) / kThreads)),
                 dim3(kThreads), 0, stream, d, in, p, h, out);
}

template <typename T>
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T, float>& in, float* h, T* out,
                         cudaStream_t stream) {
  selective_scan_step<T>(d, in, StepProjection<T>{nullptr, nullptr, 0}, h, out, stream);
}

#define ML_INSTANTIATE(T)                                                                                          \
  template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T, float>&, float*, T*, cudaStream_t); \
  template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T, float>&, const StepProjection<T>&, \
                                       float*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
