#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "../core/cuda_check.h"
#include "../core/cuda_math.cuh"
#include "../core/error.h"

namespace ml {

template <typename T>
CudaBackend<T>::CudaBackend(bool deterministic) {
  scan_.deterministic = deterministic;
  ML_CUDA_CHECK("device cuda", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

template <typename T>
CudaBackend<T>::~CudaBackend() {
  cudaStreamSynchronize(stream_);
  cudaStreamDestroy(stream_);
}

template <typename T>
void CudaBackend<T>::zero(void* p, size_t bytes) const {
  if (bytes) ML_CUDA_CHECK("zero", cudaMemsetAsync(p, 0, bytes, stream_));
}

template <typename T>
void CudaBackend<T>::copy_to_host(void* dst, const void* src, size_t bytes) const {
  if (bytes) ML_CUDA_CHECK("copy to host", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
}

// From pageable memory: the copy has completed when this returns, so `src` may change after.
template <typename T>
void CudaBackend<T>::from_host(void* dst, const void* src, size_t bytes) const {
  if (bytes) ML_CUDA_CHECK("copy to device", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

template <typename T>
void CudaBackend<T>::copy(void* dst, const void* src, size_t bytes) const {
  if (bytes) ML_CUDA_CHECK("copy on device", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

template <typename T>
void CudaBackend<T>::sync() const {
  ML_CUDA_CHECK("synchronise", cudaStreamSynchronize(stream_));
}

template <typename T>
void CudaBackend<T>::check_mamba_shape(int64_t d_conv, int64_t d_state) const {
  ML_CHECK(d_conv <= 4, "mamba mixer (cuda): d_conv must be at most 4, got ", d_conv);
  ML_CHECK(d_state == 2 || d_state == 4 || d_state == 8 || d_state == 16,
           "mamba mixer (cuda): d_state must be 2, 4, 8 or 16, got ", d_state);
}

template <typename T>
void CudaBackend<T>::check_attention_shape(int64_t head_dim) const {
  ML_CHECK(head_dim <= 128, "attention (cuda): the head dimension (d_model / heads) must be at most 128, got ",
           head_dim);
}

template <typename T>
cpu::HeadDims CudaBackend<T>::chunked(cpu::HeadDims d) {
  const int64_t cols = std::max<int64_t>(256, (int64_t{1} << 27) / std::max<int64_t>(d.rows, 1)) / 8 * 8;
  d.chunk = std::min(cols, d.vocab);
  return d;
}

template <typename T>
void CudaBackend<T>::adamw(const cpu::AdamWParams& hp, const std::vector<OptimizerTensor<float, T>>& tensors,
                           const float* norm_coef) const {
  std::vector<cuda::AdamWTensor> batch;
  batch.reserve(tensors.size());
  for (const auto& t : tensors) {
    cuda::AdamWTensor a{t.param, t.grad, t.m, t.v, t.size, float(t.weight_decay)};
    if constexpr (!std::is_same_v<T, float>) a.param_bf16 = t.compute;
    batch.push_back(a);
  }
  cuda::adamw_update(hp, batch, norm_coef + 1, stream_);
}

template class CudaBackend<float>;
template class CudaBackend<cuda::bf16>;

}  // namespace ml
