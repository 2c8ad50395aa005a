// The language model on the GPU: ml::LanguageModel's layout and equations (see ../lm.h) with
// the CUDA ops, mixed precision as DESIGN.md says: T activations (bf16 or fp32), the residual
// stream and its gradient in fp32, fp32 master weights and gradients (DeviceParams).
// Nothing here synchronises with the host: the loss stays on the device until the runtime
// reads the step's metrics.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../../core/device_allocator.h"
#include "../lm.h"
#include "context.h"
#include "layer.h"
#include "params.h"

namespace ml::cuda {

template <typename T>
class LanguageModel {
 public:
  // `initial` holds the starting weights (a CPU model's, so both backends start alike).
  LanguageModel(const ModelConfig& config, const ParamList<float>& initial, const Context& context);

  const ModelConfig& config() const { return cfg_; }
  DeviceParams<T>& params() { return params_; }
  cudaStream_t stream() const { return ctx_.stream; }

  // tokens: host (batch, len + 1) int32, checked against the vocabulary, then uploaded.
  void forward(const int32_t* tokens, int64_t batch, int64_t len_plus_one, bool training) {
    upload(tokens, batch, len_plus_one);
    forward_uploaded(training);
  }
  // forward's two halves, so that a CUDA graph can replay the second: upload (re)allocates
  // the activations when the shape changes, checks and copies the ids; forward_uploaded only
  // enqueues kernels on the stream.
  void upload(const int32_t* tokens, int64_t batch, int64_t len_plus_one);
  void forward_uploaded(bool training);
  // Changes whenever activation buffers are reallocated (a captured step is then stale).
  int64_t buffers_generation() const { return generation_; }
  bool capturable() const;
  // Mean cross-entropy of the last forward, on the device.
  const float* loss() const { return loss_.get(); }
  // Accumulates every parameter's gradient (cross-entropy + auxiliary losses).
  void backward();
  void zero_grad();
  std::vector<DeviceExpertStats> expert_stats() const;

 private:
  std::unique_ptr<Layer<T>> make_layer(char kind, const std::string& prefix, int64_t index);

  ModelConfig cfg_;
  const Context& ctx_;
  DeviceParams<T> params_;
  size_t embedding_, norm_f_;
  std::vector<size_t> norms_;
  std::vector<std::unique_ptr<Layer<T>>> layers_;

  int64_t batch_ = 0, len_ = 0, generation_ = 0;
  bool trained_forward_ = false;
  std::vector<int32_t> ids_host_;  // inputs then targets
  DeviceBuffer<int32_t> ids_;
  // residual_[i] is r_i (fp32), normed_[i] the output of norm i (T), rstd_[i] its statistics;
  // the last entries belong to norm_f. lse_: the head's per-row log-sum-exp.
  std::vector<DeviceBuffer<float>> residual_, rstd_;
  std::vector<DeviceBuffer<T>> normed_;
  DeviceBuffer<T> mixed_;
  DeviceBuffer<float> lse_, loss_;
};

}  // namespace ml::cuda
