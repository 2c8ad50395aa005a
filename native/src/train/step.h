// One training step on backend B: zero the gradients, forward, backward, the global-norm
// clipping coefficient and AdamW (which applies it and refreshes a compute copy), all enqueued
// on the backend, then one synchronisation to read the metrics. Holds the step count.
// Where B can capture graphs (CUDA), a step that has run eagerly at a shape makes the next
// capture zero-grad → forward → backward → clip coefficient into a graph, and later steps
// replay it (AdamW, whose learning rate and bias corrections change every step, stays a few
// eager launches). A model that reads values on the host mid-step (dropless MoE) runs eagerly.
#pragma once
#include <cstdint>
#include <vector>

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

template <class B>
class TrainStep {
 public:
  using Stat = typename B::Stat;

  TrainStep(LanguageModel<B>& model, bool use_graphs)
      : model_(model), use_graphs_(use_graphs && B::kGraphs), norm_coef_(2, "gradient norm") {}

  StepMetrics run(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr, const OptimizerConfig& opt) {
    const B& b = model_.backend();
    ParamStore<B>& params = model_.params();
    model_.upload(tokens, batch, len_plus_one);
    if constexpr (B::kGraphs) {
      const int64_t generation = model_.buffers_generation();
      replayed_ = graph_ && graph_generation_ == generation && graph_clip_ == opt.grad_clip;
      if (!replayed_ && use_graphs_ && !capture_refused_ && warm_generation_ == generation &&
          warm_clip_ == opt.grad_clip && model_.capturable()) {
        graph_ = b.capture([&] { gradients(opt.grad_clip); });
        graph_generation_ = generation, graph_clip_ = opt.grad_clip;
        replayed_ = bool(graph_);
        capture_refused_ = !graph_;  // the same work would be refused again: stay eager
      }
    }
    if (replayed_) {
      if constexpr (B::kGraphs) b.launch(graph_);
    } else {
      gradients(opt.grad_clip);
      warm_generation_ = model_.buffers_generation(), warm_clip_ = opt.grad_clip;
    }

    ++steps_done_;
    std::vector<OptimizerTensor<typename B::Real, typename B::Act>> tensors;
    tensors.reserve(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const ParamSpec& p = params.spec(i);
      tensors.push_back({params.master(i), params.grad(i), params.first_moment(i), params.second_moment(i), p.numel,
                         p.weight_decay ? opt.weight_decay : 0.0,
                         ParamStore<B>::kComputeCopy ? params.compute(i) : nullptr});
    }
    b.adamw({lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, steps_done_}, tensors, norm_coef_.get());
    StepMetrics m = read_metrics(true);
    m.cuda_graph = replayed_;
    return m;
  }

  // The last forward's loss, auxiliary losses and routing, read back (synchronises).
  StepMetrics read_metrics(bool with_grad_norm) const {
    const B& b = model_.backend();
    Stat loss = 0, norm = 0;
    b.copy_to_host(&loss, model_.loss(), sizeof(Stat));
    if (with_grad_norm) b.copy_to_host(&norm, norm_coef_.get(), sizeof(Stat));
    const std::vector<ExpertStats> stats = model_.expert_stats();
    std::vector<ExpertCounts> experts(stats.size());
    std::vector<double> aux(stats.size());
    for (size_t l = 0; l < stats.size(); ++l) {
      experts[l].counts.resize(size_t(stats[l].experts));
      b.copy_to_host(experts[l].counts.data(), stats[l].counts, size_t(stats[l].experts) * sizeof(int64_t));
      b.copy_to_host(&experts[l].dropped, stats[l].dropped, sizeof(int64_t));
      b.copy_to_host(&aux[l], stats[l].aux_loss, sizeof(double));
    }
    b.sync();
    double aux_loss = 0;
    for (double a : aux) aux_loss += a;
    return {double(loss), aux_loss, double(norm), std::move(experts)};
  }

  // Drops the captured step: the next steps run eagerly, then capture again. Call it before
  // anything else uses the model's buffers (evaluation, gradients on request).
  void forget_graph() { graph_ = {}, warm_generation_ = -1; }

  int64_t steps_done() const { return steps_done_; }
  void set_steps_done(int64_t steps) { steps_done_ = steps; }

 private:
  // Zero-grad, forward, backward and the clipping coefficient: the part a graph replays.
  void gradients(double grad_clip) {
    ParamStore<B>& params = model_.params();
    model_.zero_grad();
    model_.forward_uploaded(true);
    model_.backward();
    // One span covers every gradient: the padding between tensors stays zero.
    model_.backend().clip_coefficient(params.grads(), params.total(), grad_clip, norm_coef_.get());
  }

  LanguageModel<B>& model_;
  const bool use_graphs_;
  typename B::template Buffer<Stat> norm_coef_;  // [0] gradient norm before clipping, [1] clipping coefficient
  int64_t steps_done_ = 0;
  typename B::Graph graph_;
  // The model's buffers generation and clipping threshold the graph was captured at, and
  // those of the last eager step (capture waits for one, which warms every cache).
  int64_t graph_generation_ = -1, warm_generation_ = -1;
  double graph_clip_ = 0, warm_clip_ = 0;
  bool replayed_ = false, capture_refused_ = false;
};

}  // namespace ml
