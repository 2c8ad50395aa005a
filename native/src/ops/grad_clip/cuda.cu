// Multi-tensor sum of squares: one block per 64K-element chunk writes its fp64 partial;
// one block adds the partials in order and derives the norm and the clip coefficient;
// clipping scales every chunk by that coefficient read on the device.
#include <utility>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/multi_tensor.cuh"
#include "grad_clip.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 65536;

struct Entry {
  float* data;
  int64_t size;
};

__device__ __forceinline__ const Entry& locate(const TensorBatch<Entry>& b, int64_t& begin, int64_t& end) {
  const int i = entry_of(b, blockIdx.x);
  begin = (int64_t(blockIdx.x) - b.first_block[i]) * kChunk;
  end = min(b.entries[i].size, begin + kChunk);
  return b.entries[i];
}

__global__ void sum_squares_kernel(const __grid_constant__ TensorBatch<Entry> batch, double* __restrict__ partial) {
  __shared__ double scratch[32];
  int64_t begin, end;
  const Entry& e = locate(batch, begin, end);
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += double(e.data[i]) * double(e.data[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[batch.blocks_before + blockIdx.x] = s;
}

__device__ double sum_partials(const double* __restrict__ partial, int64_t parts) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t p = threadIdx.x; p < parts; p += blockDim.x) s += partial[p];
  return block_sum(s, scratch);
}

__global__ void finish_sum_kernel(const double* __restrict__ partial, int64_t parts, double* __restrict__ out) {
  const double s = sum_partials(partial, parts);
  if (threadIdx.x == 0) out[0] = s;
}

__global__ void finish_norm_kernel(const double* __restrict__ partial, int64_t parts, double max_norm, double scale,
                                   const float* __restrict__ loss, float* __restrict__ norm_out,
                                   float* __restrict__ coef_out, double elsewhere) {
  const double s = sum_partials(partial, parts);
  if (threadIdx.x == 0) {
    const double norm = scale * sqrt(s + elsewhere);
    norm_out[0] = float(norm);
    if (!coef_out) return;
    if (!isfinite(norm) || (loss && !isfinite(*loss))) {
      coef_out[0] = __int_as_float(0x7fc00000);  // NaN: the optimizer skips the step
    } else {
      coef_out[0] = float(scale * ((max_norm > 0 && norm > max_norm) ? max_norm / (norm + 1e-6) : 1.0));
    }
  }
}

__global__ void scale_kernel(const __grid_constant__ TensorBatch<Entry> batch, const float* __restrict__ coef) {
  const float c = *coef;
  if (c == 1.f) return;
  int64_t begin, end;
  const Entry& e = locate(batch, begin, end);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) e.data[i] *= c;
}

std::vector<TensorBatch<Entry>> batches_of(const std::vector<GradSpan<float>>& grads) {
  std::vector<Entry> entries;
  entries.reserve(grads.size());
  for (const auto& g : grads) entries.push_back({g.data, g.size});
  return make_batches(entries, kChunk, [](const Entry& e) { return e.size; });
}

// Each block's Σ g² into partial (returned with its count), for a finishing kernel to add up.
std::pair<DeviceBuffer<double>, int64_t> partial_squares(const std::vector<GradSpan<float>>& grads,
                                                         cudaStream_t stream) {
  const auto batches = batches_of(grads);
  const int64_t parts = batches.empty() ? 0 : batches.back().blocks_before + batches.back().blocks();
  DeviceBuffer<double> partial(std::max<int64_t>(parts, 1), "global_norm");
  for (const auto& batch : batches) {
    sum_squares_kernel<<<unsigned(batch.blocks()), kThreads, 0, stream>>>(batch, partial.get());
    ML_CUDA_CHECK_LAUNCH("global_norm");
  }
  return {std::move(partial), parts};
}

}  // namespace

void sum_squares(const std::vector<GradSpan<float>>& grads, double* out, cudaStream_t stream) {
  const auto [partial, parts] = partial_squares(grads, stream);
  finish_sum_kernel<<<1, 1024, 0, stream>>>(partial.get(), parts, out);
  ML_CUDA_CHECK_LAUNCH("sum_squares");
}

void clip_coefficient(const std::vector<GradSpan<float>>& grads, double max_norm, double scale, const float* loss,
                      float* norm_out, float* coef_out, cudaStream_t stream, double elsewhere) {
  const auto [partial, parts] = partial_squares(grads, stream);
  finish_norm_kernel<<<1, 1024, 0, stream>>>(partial.get(), parts, max_norm, scale, loss, norm_out, coef_out,
                                             elsewhere);
  ML_CUDA_CHECK_LAUNCH("global_norm");
}

void global_norm(const std::vector<GradSpan<float>>& grads, float* norm_out, cudaStream_t stream) {
  clip_coefficient(grads, 0.0, 1.0, nullptr, norm_out, nullptr, stream);
}

void clip_grad_norm(const std::vector<GradSpan<float>>& grads, double max_norm, float* norm_out, cudaStream_t stream) {
  DeviceBuffer<float> coef(1, "clip_grad_norm");
  clip_coefficient(grads, max_norm, 1.0, nullptr, norm_out, coef.get(), stream);
  for (const auto& batch : batches_of(grads)) {
    scale_kernel<<<unsigned(batch.blocks()), kThreads, 0, stream>>>(batch, coef.get());
    ML_CUDA_CHECK_LAUNCH("clip_grad_norm");
  }
}

}  // namespace ml::cuda
