// One training step on the GPU, all on the context's stream: zero gradients, forward,
// backward, the clipping coefficient and AdamW (which applies it and refreshes the bf16
// weights) — then one synchronisation to read the metrics. Holds the step count.
#pragma once
#include <cstdint>

#include "../core/device_allocator.h"
#include "../nn/cuda/lm.h"
#include "step.h"

namespace ml::cuda {

template <typename T>
class TrainStep {
 public:
  explicit TrainStep(LanguageModel<T>& model);

  StepMetrics run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr, const OptimizerConfig& opt);
  // The last forward's loss, auxiliary losses and routing, read from the device (synchronises).
  StepMetrics read_metrics(bool with_grad_norm);

  int64_t steps_done() const { return steps_done_; }
  void set_steps_done(int64_t steps) { steps_done_ = steps; }

 private:
  LanguageModel<T>& model_;
  cudaStream_t stream_;
  DeviceBuffer<float> norm_and_coef_;  // [0] gradient norm before clipping, [1] clipping coefficient
  int64_t steps_done_ = 0;
};

}  // namespace ml::cuda
