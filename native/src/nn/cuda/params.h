// The parameters of a GPU model in flat device buffers: fp32 master weights, fp32 gradients,
// AdamW's two fp32 moments, and for bf16 compute a bf16 copy of the weights that the
// optimizer refreshes. Names, shapes and order are those of the CPU model (ml::ParamList),
// whose initial values are uploaded, so both backends start from the same weights.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../../core/cuda_fwd.h"
#include "../../core/device_allocator.h"
#include "../../core/tensor.h"
#include "../param.h"

namespace ml::cuda {

struct DeviceParamInfo {
  std::string name;
  Shape shape, file_shape;
  bool weight_decay;
  int64_t offset, numel;  // into the flat buffers, in elements (offsets 64-element aligned)
};

template <typename T>
class DeviceParams {
 public:
  // Uploads `host`'s values; gradients and moments start at zero.
  DeviceParams(const ParamList<float>& host, cudaStream_t stream);

  size_t size() const { return info_.size(); }
  const DeviceParamInfo& info(size_t i) const { return info_[i]; }
  size_t index(const std::string& name) const;  // throws naming the parameter when absent

  float* master(size_t i) const { return master_.get() + info_[i].offset; }
  float* grad(size_t i) const { return grad_.get() + info_[i].offset; }
  float* first_moment(size_t i) const { return m_.get() + info_[i].offset; }
  float* second_moment(size_t i) const { return v_.get() + info_[i].offset; }
  // The weights as the layers read them: the bf16 copy, or the master weights themselves.
  T* compute(size_t i) const;

  // By name, for layers: prefix + "in_proj.weight" and so on.
  float* master(const std::string& name) const { return master(index(name)); }
  float* grad(const std::string& name) const { return grad(index(name)); }
  T* compute(const std::string& name) const { return compute(index(name)); }

  // All gradients, one contiguous span (for zeroing and clipping).
  float* grads() const { return grad_.get(); }
  int64_t total() const { return total_; }
  bool has_compute_copy() const { return !std::is_same_v<T, float>; }
  // Copies master weights into the compute copy (after weights are written from the host).
  void refresh_compute(cudaStream_t stream);

 private:
  std::vector<DeviceParamInfo> info_;
  int64_t total_ = 0;
  DeviceBuffer<float> master_, grad_, m_, v_;
  DeviceBuffer<T> compute_;  // empty when T is float
};

}  // namespace ml::cuda
