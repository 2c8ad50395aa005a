// One training step on the CPU: forward, backward, global-norm clipping, AdamW.
// Holds the optimizer state (first and second moments per parameter, and the step count).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/tensor.h"
#include "../nn/lm.h"

namespace ml {

struct OptimizerConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  double grad_clip = 1.0;  // ≤ 0: no clipping
};

// Tokens each expert of one mixture-of-experts layer took in a step, and those dropped.
struct ExpertCounts {
  std::vector<int64_t> counts;
  int64_t dropped = 0;
};

struct StepMetrics {
  double loss;       // mean next-token cross-entropy
  double aux_loss;   // load-balancing losses (weighted), also optimised
  double grad_norm;  // before clipping
  std::vector<ExpertCounts> experts;  // one per MoE layer, in layer order
  bool cuda_graph = false;            // the step replayed a captured CUDA graph
};

template <typename T>
std::vector<ExpertCounts> expert_counts(const LanguageModel<T>& model);

template <typename T>
class TrainStep {
 public:
  explicit TrainStep(LanguageModel<T>& model);

  StepMetrics run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr, const OptimizerConfig& opt);

  int64_t steps_done() const { return steps_done_; }
  void set_steps_done(int64_t steps) { steps_done_ = steps; }
  Tensor<T>& first_moment(size_t param) { return m_.at(param); }
  Tensor<T>& second_moment(size_t param) { return v_.at(param); }

 private:
  LanguageModel<T>& model_;
  std::vector<Tensor<T>> m_, v_;
  int64_t steps_done_ = 0;
};

}  // namespace ml
