// The Runtime of a model on backend B (runtime.h): the model, its training step, and the
// backend they run on, which is made first and destroyed last (the CUDA backend's stream must
// outlive every buffer whose work it carries). The parameters are made at the first call that
// needs them, so that a rank that joins an expert-parallel run first only ever holds its own
// experts. Out-of-memory errors name the config and an estimate of what it needs.
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
        model_(config, backend_, false),
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
    allocate_params();
    const auto& ps = model_.params();
    const ParamSpec& p = ps.spec(i);
    // Expert parallel: this rank holds its block of an expert tensor alone; the others' come from
    // their owners.
    const std::vector<int64_t> blocks = step_.expert_blocks(i);
    Real* out = static_cast<Real*>(dst);
    if (slot == Slot::Value || slot == Slot::Grad) {
      backend_.copy_to_host(out + p.first, slot == Slot::Value ? ps.master(i) : ps.grad(i),
                            size_t(p.held) * sizeof(Real));
      backend_.sync();
      if (!blocks.empty()) step_.collective()->all_gather(out, blocks);
      return;
    }
    // The part held here (zeros before the moments are made), then, sharded, the others' parts.
    const auto held = ps.moments_of(i);
    std::fill(out, out + bytes / sizeof(Real), Real(0));
    if (held.m) {
      backend_.copy_to_host(out + p.first + held.from, slot == Slot::FirstMoment ? held.m : held.v,
                            size_t(held.count) * sizeof(Real));
      backend_.sync();
    }
    if (step_.sharded()) step_.collective()->all_gather(out, tensor_shards(i));
    if (!blocks.empty()) step_.collective()->all_gather(out, blocks);
  }

  // Of a whole tensor, what this rank holds (expert parallel: its block of the experts).
  void write(const std::string& name, Slot slot, const void* src, size_t bytes) override {
    const size_t i = checked(name, bytes);
    allocate_params();
    auto& ps = model_.params();
    const ParamSpec& p = ps.spec(i);
    const Real* in = static_cast<const Real*>(src) + p.first;
    if (slot == Slot::Value || slot == Slot::Grad) {
      backend_.from_host(slot == Slot::Value ? ps.master(i) : ps.grad(i), in, size_t(p.held) * sizeof(Real));
      if (slot == Slot::Value) ps.refresh_compute(i);
    } else {
      ps.make_moments();
      const auto held = ps.moments_of(i);
      if (held.count > 0)
        backend_.from_host(slot == Slot::FirstMoment ? held.m : held.v, in + held.from,
                           size_t(held.count) * sizeof(Real));
    }
    backend_.sync();
  }

  StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    allocate_params();
    step_.forget_graph();
    return guarded(batch, len_plus_one, [&] {
      model_.forward(tokens, batch, len_plus_one, false);
      return step_.read_metrics(false);
    });
  }

  StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    allocate_params();
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
    allocate_params();
    return guarded(batch / std::max<int64_t>(micro_batches, 1), len_plus_one,
                   [&] { return step_.run(tokens, batch, len_plus_one, lr, opt, micro_batches); });
  }

  // Generation reallocates layer buffers that a captured training step would use: every
  // generation call forgets the graph first, as evaluate does.
  void generate_start(const GenerateRequest& request, void* last_logits) override {
    whole_experts("generation");
    allocate_params();
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
    whole_experts("generation");
    allocate_params();
    step_.forget_graph();
    generation_.feed(tokens, count, static_cast<Real*>(logits));
  }
  void parallel_logits(const int32_t* tokens, int64_t batch, int64_t len, void* logits) override {
    whole_experts("parallel_logits");
    allocate_params();
    step_.forget_graph();
    guarded(batch, len + 1, [&] {
      generation_.parallel_logits(tokens, batch, len, static_cast<Real*>(logits));
      return StepMetrics{};
    });
  }

  int64_t steps_done() const override { return step_.steps_done(); }
  void set_steps_done(int64_t steps) override { step_.set_steps_done(steps); }
  void join_ranks(std::shared_ptr<Collective> ranks, bool shard_optimizer, bool expert_parallel) override {
    step_.set_collective(ranks.get(), shard_optimizer, expert_parallel);
    ranks_ = std::move(ranks);
  }
  void from_rank_zero(double* values, int64_t n) override {
    if (ranks_) ranks_->broadcast(values, n * int64_t(sizeof(double)), 0);
  }
  int64_t optimizer_state_bytes() const override { return model_.params().moment_bytes(); }
  ParamMemory parameter_memory() const override { return model_.params().memory(); }

 private:
  // The parameters, made and drawn at the first call that needs them. Out of GPU memory, the
  // error names the config.
  void allocate_params() {
    try {
      model_.allocate_params();
    } catch (const cuda::OutOfDeviceMemory& e) {
      const ModelConfig& c = model_.config();
      throw Error(detail::concat("out of GPU memory: layers '", describe_layers(c.layers), "', d_model ", c.d_model,
                                 ": ", e.what()));
    }
  }

  // Generation decodes each token from its experts' weights, which an expert-parallel rank holds
  // only for its own block.
  void whole_experts(const char* what) const {
    ML_CHECK(!step_.expert_parallel(), "expert parallel: ", what, " needs every expert's weights, and this rank ",
             "keeps only its block current; generate from a checkpoint, or in a process that has not joined ranks");
  }

  size_t checked(const std::string& name, size_t bytes) const {
    const auto& ps = model_.params();
    const size_t i = ps.index(name);
    const ParamSpec& p = ps.spec(i);
    ML_CHECK(bytes == size_t(p.numel) * sizeof(Real), "parameter '", name, "': expected ", p.numel, " ",
             dtype_name(dtype_of<Real>()), " values of shape ", shape_str(p.shape), ", got ", bytes / sizeof(Real));
    return i;
  }

  // Tensor i's elements held by each rank: the step's shares, cut to the tensor.
  std::vector<int64_t> tensor_shards(size_t i) const {
    const ParamSpec& p = model_.params().spec(i);
    std::vector<int64_t> bounds;
    for (const int64_t b : step_.shards()) bounds.push_back(std::clamp(b - p.offset, int64_t{0}, p.numel));
    return bounds;
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
