// One kernel, streamed as a GEMV over in_proj's columns (core/streamed_matvec.cuh): blocks are
// all resident at once and take several groups of columns each, kParts warps per column, loading
// each column's weights one item ahead and, for a channel of xi, its conv window and weights as
// the column starts; the first column's before the chained wait (no kernel running then writes
// them). After the wait every block adds the residual and norms the few rows into shared memory
// itself (a few KB from L2 per block, in one round trip: cheaper than a launch of its own, and
// paid once per block, not per column group); a column of xi then goes straight through its
// channel's conv step, one lane per row.

#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/env_switch.h"
#include "../../core/error.h"
#include "../../core/streamed_matvec.cuh"
#include "mamba_input_step.h"

namespace ml::cuda {
namespace {

constexpr int kRows = 4, kWarps = 8, kMaxWidth = 4;

template <typename T>
struct FrontJob {
  MambaInputStepDims d;
  const T* x;
  const float *residual, *norm_weight;
  float* residual_out;
  T* window;
  const float *conv_weight, *conv_bias;
  T *xc, *z;

  // Lane m's row of channel n's conv: the window (oldest first), the weights and the bias.
  struct Ahead {
    float past[kMaxWidth - 1], weight[kMaxWidth], bias;
  };
  __device__ Ahead ahead(int64_t n, int lane) const {
    Ahead a{};
    const int W = int(d.width);
    const int64_t Di = d.d_inner;
    if (n >= Di || lane >= d.batch) return a;
    const T* past = window + lane * (W - 1) * Di + n;
#pragma unroll
    for (int k = 0; k < kMaxWidth; ++k) {
      if (k + 1 < W) a.past[k] = to_float(past[k * Di]);
      if (k < W) a.weight[k] = conv_weight[n * W + k];
    }
    a.bias = conv_bias ? conv_bias[n] : 0.f;
    return a;
  }

  // The pre-norm, as rmsnorm_forward: r = x + residual, scaled by 1/sqrt(mean(r²) + eps). Each
  // thread takes runs of kRun columns, 16-byte loads all issued before they are used, so a row of
  // up to blockDim.x · kRun columns is one round trip to L2 for the sum and one (from L1) for the
  // scaled values, not one per column.
  __device__ void sum_run(float (&r)[streamed::kRun], int m, int k) const {
    using streamed::kRun;
    const int64_t D = d.d_model;
    const int valid = int(min(int64_t(kRun), D - k));
    Run<T, kRun> xr;
    Run<float, kRun> rr;
    load_run(xr, x + m * D + k, valid);
    if (residual) load_run(rr, residual + m * D + k, valid);
#pragma unroll
    for (int i = 0; i < kRun; ++i) r[i] = xr.at(i) + (residual ? rr.at(i) : 0.f);
  }

  __device__ void stage(T* normed, int64_t stride) const {
    using streamed::kRun;
    __shared__ float scratch[32];
    const int64_t D = d.d_model;
    const int step = int(blockDim.x) * kRun;
#pragma unroll 1
    for (int m = 0; m < kRows; ++m) {
      if (m >= d.batch) break;
      float sumsq = 0.f;
#pragma unroll 1
      for (int k = int(threadIdx.x) * kRun; k < D; k += step) {
        float r[kRun];
        sum_run(r, m, k);
#pragma unroll
        for (int i = 0; i < kRun; ++i) sumsq += r[i] * r[i];
      }
      const float scale = 1.f / sqrtf(block_sum(sumsq, scratch) / float(D) + float(d.eps));
#pragma unroll 1
      for (int k = int(threadIdx.x) * kRun; k < stride; k += step) {
        float r[kRun];
        sum_run(r, m, k);
        const int valid = int(max(int64_t(0), min(int64_t(kRun), D - k)));
        Run<float, kRun> w;
        load_run(w, norm_weight + k, valid);
        if (blockIdx.x == 0) store_run(residual_out + m * D + k, r, valid);
#pragma unroll
        for (int i = 0; i < kRun; ++i) r[i] = r[i] * scale * w.at(i);
        store_run(normed + m * stride + k, r, kRun);
      }
    }
  }

  // Column n of row `lane`: z's, or xi's through conv1d_step's sum (bias, then the oldest input
  // first) and the window's shift.
  __device__ void finish(int64_t n, int lane, const float (&dots)[kRows], const Ahead& a) const {
    const int64_t Di = d.d_inner;
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      if (m != lane || m >= d.batch) continue;
      if (n >= Di) {
        z[m * Di + n - Di] = from_float<T>(dots[m]);
        continue;
      }
      const int W = int(d.width);
      T* past = window + m * (W - 1) * Di + n;
      const float newest = to_float(from_float<T>(dots[m]));
      float acc = a.bias;
#pragma unroll
      for (int k = 0; k < kMaxWidth; ++k) {
        if (k >= W) break;
        const float input = k + 1 < W ? a.past[k] : newest;
        acc += a.weight[k] * input;
        if (k >= 1) past[(k - 1) * Di] = from_float<T>(input);
      }
      xc[m * Di + n] = from_float<T>(silu32(acc));
    }
  }
};

// Blocks per SM asked of the compiler: 4 (64 registers) where that spills nothing (bf16, one warp
// per column: the shapes whose in_proj is large enough for occupancy to matter), else fewer.
template <int kParts, typename T>
constexpr int kMinBlocks = sizeof(T) == 2 ? (kParts == 1 ? 4 : 3) : 2;

template <int kParts, typename T>
__global__ void __launch_bounds__(32 * kWarps, kMinBlocks<kParts, T>)
    mamba_input_step_kernel(FrontJob<T> job, const T* __restrict__ in_proj) {
  extern __shared__ uint4 staged_words[];
  stream_columns<kRows, kWarps, kParts, true>(job, in_proj, 2 * job.d.d_inner, job.d.d_model, job.d.d_model,
                                             int(job.d.batch), reinterpret_cast<T*>(staged_words));
}

template <int kParts, typename T>
void launch(const FrontJob<T>& job, const T* in_proj, cudaStream_t stream) {
  constexpr int kColumns = kWarps / kParts, kThreads = 32 * kWarps;
  const auto kernel = mamba_input_step_kernel<kParts, T>;
  const size_t staged = streamed::staged_bytes(job.d.batch, job.d.d_model, sizeof(T));
  const unsigned grid = streamed_grid(reinterpret_cast<const void*>(kernel), kThreads, staged,
                                      (2 * job.d.d_inner + kColumns - 1) / kColumns, 1);
  launch_chained("mamba_input_step", kernel, dim3(grid), dim3(kThreads), staged, stream, job, in_proj);
}

// MAMBALAB_FUSED_DECODE=0: never fused, to measure the three separate kernels.
bool fusing_switched_off() {
  static const bool off = switched_off("MAMBALAB_FUSED_DECODE");
  return off;
}
}  // namespace

bool mamba_input_step_fits(const MambaInputStepDims& d, int64_t element_bytes) {
  return !fusing_switched_off() && d.batch >= 1 && d.batch <= kRows && d.width >= 1 && d.width <= kMaxWidth &&
         streamed::staged_bytes(d.batch, d.d_model, element_bytes) <= streamed::kMaxStagedBytes;
}

template <typename T>
void mamba_input_step(const MambaInputStepDims& d, const T* x, const float* residual, const float* norm_weight,
                      float* residual_out, const T* in_proj, T* window, const float* conv_weight,
                      const float* conv_bias, T* xc, T* z, cudaStream_t stream) {
  ML_CHECK(mamba_input_step_fits(d, int64_t(sizeof(T))), "mamba_input_step (cuda): batch ", d.batch, ", d_model ",
           d.d_model, ", width ", d.width, " do not fit one kernel; run rmsnorm, gemm and conv1d_step instead");
  if (d.d_inner <= 0) return;
  const FrontJob<T> job{d, x, residual, norm_weight, residual_out, window, conv_weight, conv_bias, xc, z};
  switch (streamed::warps_per_column(2 * d.d_inner)) {
    case 1: return launch<1>(job, in_proj, stream);
    case 2: return launch<2>(job, in_proj, stream);
    case 4: return launch<4>(job, in_proj, stream);
    default: return launch<8>(job, in_proj, stream);
  }
}

#define ML_INSTANTIATE(T)                                                                                      \
  template void mamba_input_step<T>(const MambaInputStepDims&, const T*, const float*, const float*, float*, \
                                    const T*, T*, const float*, const float*, T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
