// One thread per (sequence, channel) with the channel's dstate states in a loop: a step reads
// each input once, so the kernel is bound by loading h and storing it back. fp32 math with
// the CPU reference's functions (expf, log1pf), as a step is too small for the fast forms to pay.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "selective_scan_step.h"

namespace ml::cuda {
namespace {

template <typename T>
__global__ void scan_step_kernel(ScanStepDims d, ScanInputs<T, float> in, float* __restrict__ h, T* __restrict__ out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d.batch * d.dim) return;
  const int64_t b = i / d.dim, c = i % d.dim, N = d.dstate;
  const float dt = softplus32(to_float(in.delta[i]) + in.delta_bias[c]);
  const float x = to_float(in.u[i]);
  const float* A = in.A + c * N;
  const T* B = in.B + b * N;
  const T* C = in.C + b * N;
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
void selective_scan_step(const ScanStepDims& d, const ScanInputs<T, float>& in, float* h, T* out,
                         cudaStream_t stream) {
  const int64_t n = d.batch * d.dim;
  if (n <= 0) return;
  scan_step_kernel<T><<<unsigned((n + 127) / 128), 128, 0, stream>>>(d, in, h, out);
  ML_CUDA_CHECK_LAUNCH("selective_scan_step");
}

#define ML_INSTANTIATE(T) \
  template void selective_scan_step<T>(const ScanStepDims&, const ScanInputs<T, float>&, float*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
