// One kernel. A block owns a few columns of in_proj (channels of xi or of z), kParts warps per
// column, each warp summing one slice of d_model of at most kSlice elements, so that a lane
// loads its whole share of the weights in one round. Those loads are issued before the chained
// wait (weights: no kernel before writes them). Then every block adds the residual and norms the
// few rows into shared memory itself (a few KB from L2 per block, cheaper than a launch of its
// own), multiplies, and a column of xi goes straight through its channel's conv step.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "../../core/vector_io.cuh"
#include "mamba_input_step.h"

namespace ml::cuda {
namespace {

constexpr int kRows = 4, kWarps = 16, kRun = 8, kRuns = 4, kMaxWidth = 4, kMaxParts = 8;
constexpr int64_t kSlice = 32 * kRun * kRuns;
constexpr int64_t kMaxSharedBytes = 48 * 1024;

// The normed rows' stride in shared memory: whole 16-byte runs, the padding zero.
int64_t row_stride(int64_t d_model) { return (d_model + kRun - 1) / kRun * kRun; }

// Warps per column: enough warps in all to stream the matrix (as the GEMV), and slices of d_model
// no longer than kSlice.
int parts_for(int64_t columns, int64_t d_model) {
  int parts = columns >= 4096 ? 1 : columns >= 2048 ? 2 : columns >= 1024 ? 4 : 8;
  while (parts * kSlice < d_model) parts *= 2;
  return parts;
}

template <typename T>
__device__ __forceinline__ void load_shared_run(Run<T, kRun>& r, const T* p) {
  static_assert(Run<T, kRun>::kWords % 4 == 0, "a run is whole 16-byte words");
#pragma unroll
  for (int q = 0; q < Run<T, kRun>::kWords / 4; ++q) {
    const uint4 v = reinterpret_cast<const uint4*>(p)[q];
    r.w[4 * q] = v.x, r.w[4 * q + 1] = v.y, r.w[4 * q + 2] = v.z, r.w[4 * q + 3] = v.w;
  }
}

template <int kParts, typename T>
__global__ void __launch_bounds__(32 * kWarps)
    mamba_input_step_kernel(MambaInputStepDims d, const T* __restrict__ x, const float* __restrict__ residual,
                            const float* __restrict__ norm_weight, float* __restrict__ residual_out,
                            const T* __restrict__ in_proj, T* __restrict__ window,
                            const float* __restrict__ conv_weight, const float* __restrict__ conv_bias,
                            T* __restrict__ xc, T* __restrict__ z) {
  extern __shared__ uint4 shared_words[];
  T* normed = reinterpret_cast<T*>(shared_words);  // (batch, stride)
  __shared__ float partial[kWarps][kRows];
  __shared__ float scratch[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % kParts, rows = int(d.batch);
  const int64_t D = d.d_model, Di = d.d_inner, stride = (D + kRun - 1) / kRun * kRun;
  const int64_t n = int64_t(blockIdx.x) * (kWarps / kParts) + warp / kParts;
  const int64_t chunk = (D + kRun * kParts - 1) / (kRun * kParts) * kRun;  // whole runs: slices stay aligned
  const int64_t k0 = min(D, part * chunk), len = n < 2 * Di ? min(D, k0 + chunk) - k0 : 0;

  Run<T, kRun> w[kRuns];
  int valid[kRuns];
  const T* row = in_proj + (n < 2 * Di ? n : 0) * D + k0;
#pragma unroll
  for (int u = 0; u < kRuns; ++u) {
    const int64_t left = len - (lane * kRun + u * 32 * kRun);
    valid[u] = left < kRun ? int(left < 0 ? 0 : left) : kRun;
    load_run(w[u], row + lane * kRun + u * 32 * kRun, valid[u]);
  }
  chain_wait();

  // The pre-norm, as rmsnorm_forward: r = x + residual, scaled by 1/sqrt(mean(r²) + eps).
  float scale[kRows];
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
    if (m >= rows) break;
    float sumsq = 0.f;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      const float r = to_float(x[m * D + j]) + (residual ? residual[m * D + j] : 0.f);
      sumsq += r * r;
    }
    scale[m] = 1.f / sqrtf(block_sum(sumsq, scratch) / float(D) + float(d.eps));
  }
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
    if (m >= rows) break;
    for (int64_t j = threadIdx.x; j < stride; j += blockDim.x) {
      float v = 0.f;
      if (j < D) {
        const float r = to_float(x[m * D + j]) + (residual ? residual[m * D + j] : 0.f);
        if (blockIdx.x == 0) residual_out[m * D + j] = r;
        v = r * scale[m] * norm_weight[j];
      }
      normed[m * stride + j] = from_float<T>(v);
    }
  }
  __syncthreads();

  float dots[kRows];
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
    dots[m] = 0.f;
    if (m >= rows) continue;
#pragma unroll
    for (int u = 0; u < kRuns; ++u) {
      if (valid[u] == 0) continue;
      Run<T, kRun> v;
      load_shared_run(v, normed + m * stride + k0 + lane * kRun + u * 32 * kRun);
#pragma unroll
      for (int k = 0; k < kRun; ++k) dots[m] += w[u].at(k) * v.at(k);
    }
    dots[m] = warp_sum(dots[m]);
  }
  if constexpr (kParts > 1) {
    if (lane == 0)
      for (int m = 0; m < kRows; ++m) partial[warp][m] = dots[m];
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      dots[m] = partial[warp][m];
      for (int p = 1; p < kParts; ++p) dots[m] += partial[warp + p][m];
    }
  }
  if (n >= 2 * Di || lane != 0) return;
  if (n >= Di) {
    for (int m = 0; m < rows; ++m) z[m * Di + n - Di] = from_float<T>(dots[m]);
    return;
  }
  // xi's channel n: conv1d_step's sum (bias, then the oldest input first) and window shift.
  const int W = int(d.width);
  for (int m = 0; m < rows; ++m) {
    T* past = window + m * (W - 1) * Di + n;
    float hist[kMaxWidth];
    for (int k = 0; k + 1 < W; ++k) hist[k] = to_float(past[k * Di]);
    hist[W - 1] = to_float(from_float<T>(dots[m]));
    float acc = conv_bias ? conv_bias[n] : 0.f;
    for (int k = 0; k < W; ++k) acc += conv_weight[n * W + k] * hist[k];
    for (int k = 0; k + 1 < W; ++k) past[k * Di] = from_float<T>(hist[k + 1]);
    xc[m * Di + n] = from_float<T>(silu32(acc));
  }
}

template <int kParts>
int64_t blocks_for(const MambaInputStepDims& d) {
  constexpr int kColumns = kWarps / kParts;
  return (2 * d.d_inner + kColumns - 1) / kColumns;
}
template <typename T>
size_t shared_bytes(const MambaInputStepDims& d) {
  return size_t(d.batch * row_stride(d.d_model)) * sizeof(T);
}

template <int kParts, typename T>
void launch(const MambaInputStepDims& d, const T* x, const float* residual, const float* norm_weight,
            float* residual_out, const T* in_proj, T* window, const float* conv_weight, const float* conv_bias, T* xc,
            T* z, cudaStream_t stream) {
  launch_chained("mamba_input_step", mamba_input_step_kernel<kParts, T>, dim3(unsigned(blocks_for<kParts>(d))),
                 dim3(32 * kWarps), shared_bytes<T>(d), stream, d, x, residual, norm_weight, residual_out, in_proj,
                 window, conv_weight, conv_bias, xc, z);
}

// Whether every block of the kernel is resident at once on `device`. A query that fails answers
// no: the three separate kernels are then the (always correct) way.
template <int kParts, typename T>
bool one_wave(const MambaInputStepDims& d, int device) {
  int sms = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mamba_input_step_kernel<kParts, T>, 32 * kWarps,
                                                    shared_bytes<T>(d)) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return blocks_for<kParts>(d) <= int64_t(sms) * per_sm;
}
template <typename T>
bool one_wave(const MambaInputStepDims& d, int device) {
  switch (parts_for(2 * d.d_inner, d.d_model)) {
    case 1: return one_wave<1, T>(d, device);
    case 2: return one_wave<2, T>(d, device);
    case 4: return one_wave<4, T>(d, device);
    default: return one_wave<8, T>(d, device);
  }
}

}  // namespace

bool mamba_input_step_pays(const MambaInputStepDims& d, int64_t element_bytes) {
  if (!mamba_input_step_fits(d, element_bytes)) return false;
  // Asked once per device and shape (a generation's eager first step), not while a graph is captured.
  int device = 0;
  ML_CUDA_CHECK("mamba_input_step", cudaGetDevice(&device));
  const auto key = std::make_tuple(device, d.batch, d.d_model, d.d_inner, element_bytes);
  static std::mutex mutex;
  static std::map<decltype(key), bool> known;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = known.find(key);
  if (it == known.end()) it = known.emplace(key, element_bytes == 2 ? one_wave<bf16>(d, device) : one_wave<float>(d, device)).first;
  return it->second;
}

bool mamba_input_step_fits(const MambaInputStepDims& d, int64_t element_bytes) {
  static const bool switched_on = [] {
    const char* setting = std::getenv("MAMBALAB_FUSED_DECODE");
    return !(setting && std::strcmp(setting, "0") == 0);
  }();
  return switched_on && d.batch >= 1 && d.batch <= kRows && d.width >= 1 && d.width <= kMaxWidth &&
         d.d_model <= kMaxParts * kSlice && d.batch * row_stride(d.d_model) * element_bytes <= kMaxSharedBytes;
}

template <typename T>
void mamba_input_step(const MambaInputStepDims& d, const T* x, const float* residual, const float* norm_weight,
                      float* residual_out, const T* in_proj, T* window, const float* conv_weight,
                      const float* conv_bias, T* xc, T* z, cudaStream_t stream) {
  ML_CHECK(mamba_input_step_fits(d, int64_t(sizeof(T))), "mamba_input_step (cuda): batch ", d.batch, ", d_model ",
           d.d_model, ", width ", d.width, " do not fit one kernel; run rmsnorm, gemm and conv1d_step instead");
  if (d.d_inner <= 0) return;
  switch (parts_for(2 * d.d_inner, d.d_model)) {
    case 1: return launch<1>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_weight, conv_bias, xc, z, stream);
    case 2: return launch<2>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_weight, conv_bias, xc, z, stream);
    case 4: return launch<4>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_weight, conv_bias, xc, z, stream);
    default: return launch<8>(d, x, residual, norm_weight, residual_out, in_proj, window, conv_weight, conv_bias, xc, z, stream);
  }
}

#define ML_INSTANTIATE(T)                                                                                      \
  template void mamba_input_step<T>(const MambaInputStepDims&, const T*, const float*, const float*, float*, \
                                    const T*, T*, const float*, const float*, T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
