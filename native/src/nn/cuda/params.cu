#include "params.h"

#include <cuda_runtime.h>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../ops/cast/cast.h"

namespace ml::cuda {

template <typename T>
DeviceParams<T>::DeviceParams(const ParamList<float>& host, cudaStream_t stream) {
  for (size_t i = 0; i < host.size(); ++i) {
    const Param<float>& p = host[i];
    const int64_t numel = p.value.numel();
    info_.push_back({p.name, p.value.shape(), p.file_shape, p.weight_decay, total_, numel});
    total_ += (numel + 63) / 64 * 64;  // 256-byte aligned tensors: vector loads and cuBLASLt
  }
  master_ = DeviceBuffer<float>(total_, "model parameters");
  grad_ = DeviceBuffer<float>(total_, "model gradients");
  m_ = DeviceBuffer<float>(total_, "AdamW first moments");
  v_ = DeviceBuffer<float>(total_, "AdamW second moments");
  if (has_compute_copy()) compute_ = DeviceBuffer<T>(total_, "bf16 weights");
  for (auto* buffer : {&master_, &grad_, &m_, &v_})
    ML_CUDA_CHECK("model parameters", cudaMemsetAsync(buffer->get(), 0, buffer->bytes(), stream));
  for (size_t i = 0; i < host.size(); ++i)
    ML_CUDA_CHECK("model parameters", cudaMemcpyAsync(master(i), host[i].value.data(), info_[i].numel * sizeof(float),
                                                      cudaMemcpyHostToDevice, stream));
  refresh_compute(stream);
  // The host tensors may be freed once this returns.
  ML_CUDA_CHECK("model parameters", cudaStreamSynchronize(stream));
}

template <typename T>
size_t DeviceParams<T>::index(const std::string& name) const {
  for (size_t i = 0; i < info_.size(); ++i)
    if (info_[i].name == name) return i;
  throw Error("no parameter named '" + name + "'");
}

template <typename T>
T* DeviceParams<T>::compute(size_t i) const {
  if constexpr (std::is_same_v<T, float>) {
    return master(i);
  } else {
    return compute_.get() + info_[i].offset;
  }
}

template <typename T>
void DeviceParams<T>::refresh_compute(cudaStream_t stream) {
  if constexpr (!std::is_same_v<T, float>) cast(master_.get(), compute_.get(), total_, stream);
}

template class DeviceParams<float>;
template class DeviceParams<bf16>;

}  // namespace ml::cuda
