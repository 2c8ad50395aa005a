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
// from the same row.
template <typename T>
__global__ void scan_step_kernel(ScanStepDims d, ScanInputs<T, float> in, StepProjection<T> p, float* __restrict__ h,
                                 T* __restrict__ out) {
  chain_wait();
  const int64_t group = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kLanes;
  const int lane = int(threadIdx.x % kLanes);
  // Idle groups stay to the end: every lane of the warp takes part in the shuffles.
  const bool active = group < d.batch * d.dim;
  const int64_t i = active ? group : 0, b = i / d.dim, c = i % d.dim, N = d.dstate;
  float delta;
  const T *B, *C;
  if (p.rank > 0) {
    const T* row = p.xproj + b * (p.rank + 2 * N);
    const T* w = p.dt_weight + c * p.rank;
    float sum = 0.f;
    for (int64_t r = lane; r < p.rank; r += kLanes) sum += to_float(row[r]) * to_float(w[r]);
    delta = to_float(from_float<T>(group_sum(sum)));
    B = row + p.rank, C = row + p.rank + N;
  } else {
    delta = to_float(in.delta[i]);
    B = in.B + b * N, C = in.C + b * N;
  }
  const float dt = softplus32(delta + in.delta_bias[c]);
  const float x = to_float(in.u[i]);
  const float* A = in.A + c * N;
  float* hc = h + i * N;
  float y = 0.f;
  for (int64_t n = lane; n < N; n += kLanes) {
    const float hn = expf(dt * A[n]) * hc[n] + dt * to_float(B[n]) * x;
    if (active) hc[n] = hn;
    y += to_float(C[n]) * hn;
  }
  y = group_sum(y) + in.D[c] * x;
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
