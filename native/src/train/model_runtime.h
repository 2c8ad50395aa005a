// The Runtime of a model on backend B (runtime.h): the model, its training step, and the
// backend they run on, which is made first and destroyed last (the CUDA backend's stream must
// outlive every buffer whose work it carries). Out-of-memory errors name the config and an
// estimate of what it needs.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/device_allocator.h"
#include "../core/gpu.h"
#include "memory.h"
#include "runtime.h"
#include "step.h"

namespace ml {

template <class B>
class ModelRuntime final : public Runtime {
 public:
  using Real = typename B::Real;

  template <typename... BackendArgs>
  ModelRuntime(const ModelConfig& config, bool cuda_graphs, BackendArgs&&... backend_args)
      : backend_(std::forward<BackendArgs>(backend_args)...),
        model_(config, backend_),
        step_(model_, cuda_graphs),
        generation_(model_, cuda_graphs) {}

  DType dtype() const override { return dtype_of<Real>(); }
  int64_t vocab_size() const override { return model_.config().vocab_size; }

  std::vector<ParamInfo> params() override {
    std::vector<ParamInfo> out;
    const auto& ps = model_.params();
    for (size_t i = 0; i < ps.size(); ++i)
      out.push_back({ps.spec(i).name, ps.spec(i).shape, ps.spec(i).file_shape, ps.spec(i).weight_decay});
    return out;
  }

  void read(const std::string& name, Slot slot, void* dst, size_t bytes) override {
    const size_t i = checked(name, bytes);
    backend_.copy_to_host(dst, buffer(i, slot), bytes);
    backend_.sync();
  }

  void write(const std::string& name, Slot slot, const void* src, size_t bytes) override {
    const size_t i = checked(name, bytes);
    backend_.from_host(buffer(i, slot), src, bytes);
    if (slot == Slot::Value) model_.params().refresh_compute(i);
    backend_.sync();
  }

  StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    step_.forget_graph();
    return guarded(batch, len_plus_one, [&] {
      model_.forward(tokens, batch, len_plus_one, false);
      return step_.read_metrics(false);
    });
  }

  StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    step_.forget_graph();
    return guarded(batch, len_plus_one, [&] {
      model_.zero_grad();
      model_.forward(tokens, batch, len_plus_one, true);
      model_.backward();
      return step_.read_metrics(false);
    });
  }

  StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                         const OptimizerConfig& opt, int64_t micro_batches) override {
    return guarded(batch / std::max<int64_t>(micro_batches, 1), len_plus_one,
                   [&] { return step_.run(tokens, batch, len_plus_one, lr, opt, micro_batches); });
  }

  // Generation reallocates layer buffers that a captured training step would use: every
  // generation call forgets the graph first, as evaluate does.
  void generate_start(const GenerateRequest& request, void* last_logits) override {
    step_.forget_graph();
    guarded(int64_t(request.lengths.size()), 2, [&] {
      generation_.start(request, static_cast<Real*>(last_logits));
      return StepMetrics{};
    });
  }
  GenerateChunk generate_next(int64_t max_steps, double max_ms) override {
    step_.forget_graph();
    return generation_.next(max_steps, max_ms);
  }
  void generate_feed(const int32_t* tokens, int64_t count, void* logits) override {
    step_.forget_graph();
    generation_.feed(tokens, count, static_cast<Real*>(logits));
  }
  void parallel_logits(const int32_t* tokens, int64_t batch, int64_t len, void* logits) override {
    step_.forget_graph();
    guarded(batch, len + 1, [&] {
      generation_.parallel_logits(tokens, batch, len, static_cast<Real*>(logits));
      return StepMetrics{};
    });
  }

  int64_t steps_done() const override { return step_.steps_done(); }
  void set_steps_done(int64_t steps) override { step_.set_steps_done(steps); }
  void join_ranks(std::shared_ptr<Collective> ranks) override {
    ranks_ = std::move(ranks);
    step_.set_collective(ranks_.get());
  }

 private:
  size_t checked(const std::string& name, size_t bytes) const {
    const auto& ps = model_.params();
    const size_t i = ps.index(name);
    const ParamSpec& p = ps.spec(i);
    ML_CHECK(bytes == size_t(p.numel) * sizeof(Real), "parameter '", name, "': expected ", p.numel, " ",
             dtype_name(dtype_of<Real>()), " values of shape ", shape_str(p.shape), ", got ", bytes / sizeof(Real));
    return i;
  }

  Real* buffer(size_t i, Slot slot) {
    auto& ps = model_.params();
    switch (slot) {
      case Slot::Value: return ps.master(i);
      case Slot::Grad: return ps.grad(i);
      case Slot::FirstMoment: return ps.first_moment(i);
      case Slot::SecondMoment: return ps.second_moment(i);
    }
    throw Error("unknown parameter slot");
  }

  // Out of GPU memory: the weights were not updated (AdamW runs last and allocates nothing).
  template <typename F>
  StepMetrics guarded(int64_t batch, int64_t len_plus_one, F&& work) {
    try {
      return work();
    } catch (const cuda::OutOfDeviceMemory& e) {
      step_.forget_graph();
      backend_.sync();
      cuda::device_release_cached();
      const ModelConfig& c = model_.config();
      const GpuMemory mem = gpu_memory();
      const MemoryEstimate need = estimate_training_memory(c, model_.params().total(), batch, len_plus_one - 1,
                                                           sizeof(typename B::Act));
      throw Error(detail::concat("out of GPU memory: layers '", describe_layers(c.layers), "', d_model ", c.d_model,
                                 ", vocab ", c.padded_vocab(), ", batch ", batch, " × ", len_plus_one - 1,
                                 " tokens needs about ", describe(need), "; the GPU has ",
                                 gib(double(mem.device_total)), " (", gib(double(mem.device_free)),
                                 " free now). Use a smaller batch or sequence length. [", e.what(), "]"));
    }
  }

  B backend_;
  LanguageModel<B> model_;
  TrainStep<B> step_;
  std::shared_ptr<Collective> ranks_;  // what step_ sums through (data parallel)
  GenerateSession<B> generation_;
};

}  // namespace ml
