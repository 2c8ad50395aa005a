// One thread per (sequence, channel) with the channel's dstate states in a loop: a step reads
// each input once, so the kernel is bound by loading h and storing it back. Projected, each
// thread also sums its channel's delta over the rank (dt_proj's row: a few hundred bytes). fp32 math with
// the CPU reference's functions (expf, log1pf), as a step is too small for the fast forms to pay.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "selective_scan_step.h"

namespace ml::cuda {
namespace {

// Projected (rank > 0): delta from the row's dt_low and the channel's dt_proj row, B and C
// from the same row.
template <typename T>
__global__ void scan_step_kernel(ScanStepDims d, ScanInputs<T, float> in, StepProjection<T> p, float* __restrict__ h,
                                 T* __restrict__ out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d.batch * d.dim) return;
  const int64_t b = i / d.dim, c = i % d.dim, N = d.dstate;
  float delta;
  const T *B, *C;
  if (p.rank > 0) {
    const T* row = p.xproj + b * (p.rank + 2 * N);
    const T* w = p.dt_weight + c * p.rank;
    float sum = 0.f;
    for (int64_t r = 0; r < p.rank; ++r) sum += to_float(row[r]) * to_float(w[r]);
    delta = to_float(from_float<T>(sum));
    B = row + p.rank, C = row + p.rank + N;
  } else {
    delta = to_float(in.delta[i]);
    B = in.B + b * N, C = in.C + b * N;
  }
  const float dt = softplus32(delta + in.delta_bias[c]);
  const float x = to_float(in.u[i]);
  const float* A = in.A + c * N;
  float* hc = h + i * N;
  float y = in.D[c] * x;
  for (int64_t n = 0; n < N; ++n) {
    const float hn = expf(dt * A[n]) * hc[n] + dt * to_float(B[n]) * x;
    hc[n] = hn;
    y += to_float(C[n]) * hn;
  }
  out[i] = from_float<T>(y * silu32(to_float(in.z[i])));
}

}  // namespace

template <typename T>
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T, float>& in, const StepProjection<T>& p, float* h,
                         T* out, cudaStream_t stream) {
  const int64_t n = d.batch * d.dim;
  if (n <= 0) return;
  scan_step_kernel<T><<<unsigned((n + 127) / 128), 128, 0, stream>>>(d, in, p, h, out);
  ML_CUDA_CHECK_LAUNCH("selective_scan_step");
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
