// The Mamba mixer on the GPU: ml::MambaMixer's equations (see ../mamba.h) with the CUDA ops.
// Activations are T; the conv, scan and A parameters are read in fp32 (master weights), as the
// reference implementation keeps them.
#pragma once
#include <cstdint>
#include <string>

#include "../../core/device_allocator.h"
#include "../mamba.h"
#include "context.h"
#include "layer.h"
#include "params.h"

namespace ml::cuda {

template <typename T>
class MambaMixer final : public Layer<T> {
 public:
  MambaMixer(const MambaConfig& config, DeviceParams<T>& params, const std::string& prefix, const Context& context);

  void forward(const T* u, T* out, int64_t batch, int64_t len) override;
  void backward(const T* dout, T* du) override;
  void set_training(bool training) override { training_ = training; }

 private:
  MambaConfig cfg_;
  DeviceParams<T>& params_;
  const Context& ctx_;
  size_t in_proj_, conv_w_, conv_b_, x_proj_, dt_proj_w_, dt_proj_b_, A_log_, D_, out_proj_;
  bool training_ = true;

  int64_t batch_ = 0, len_ = 0;
  const T* u_ = nullptr;
  // Activations kept for the backward, (batch·len, ·) rows; A = −exp(A_log) in fp32.
  DeviceBuffer<T> x_, z_, xc_, dt_low_, B_, C_, delta_, y_;
  DeviceBuffer<float> A_, checkpoints_;
};

}  // namespace ml::cuda
