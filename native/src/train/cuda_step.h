// One training step on the GPU, all on the context's stream: zero gradients, forward,
// backward, the clipping coefficient and AdamW (which applies it and refreshes the bf16
// weights) — then one synchronisation to read the metrics. Holds the step count.
// Once a step has run eagerly at a shape, the next captures zero-grad → forward → backward →
// clip coefficient into a CUDA graph and later steps replay it (AdamW, whose learning rate
// and bias corrections change every step, stays a few eager launches). A model that reads
// values on the host mid-step (dropless MoE) always runs eagerly.
#pragma once
#include <cstdint>

#include "../core/device_allocator.h"
#include "cuda_graph.h"
#include "../nn/cuda/lm.h"
#include "step.h"

namespace ml::cuda {

template <typename T>
class TrainStep {
 public:
  TrainStep(LanguageModel<T>& model, bool use_graphs);

  StepMetrics run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr, const OptimizerConfig& opt);
  // The last forward's loss, auxiliary losses and routing, read from the device (synchronises).
  StepMetrics read_metrics(bool with_grad_norm);
  // Whether the last run() replayed a captured graph.
  bool replayed() const { return replayed_; }

  // Drops the captured step: the next steps run eagerly, then capture again. Call it before
  // anything else uses the model's stream and buffers (evaluation, gradients on request).
  void forget_graph() { graph_ = {}, warm_generation_ = -1; }

  int64_t steps_done() const { return steps_done_; }
  void set_steps_done(int64_t steps) { steps_done_ = steps; }

 private:
  // Zero-grad, forward, backward and the clipping coefficient: the part a graph replays.
  void gradients(double grad_clip);

  LanguageModel<T>& model_;
  const bool use_graphs_;
  DeviceBuffer<float> norm_and_coef_;  // [0] gradient norm before clipping, [1] clipping coefficient
  int64_t steps_done_ = 0;
  CudaGraph graph_;
  // The model's buffers generation and clipping threshold the graph was captured at, and
  // those of the last eager step (capture waits for one, which warms every cache).
  int64_t graph_generation_ = -1, warm_generation_ = -1;
  double graph_clip_ = 0, warm_clip_ = 0;
  bool replayed_ = false, capture_refused_ = false;
};

}  // namespace ml::cuda
