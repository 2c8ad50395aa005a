// A Runtime that runs `enter` on the calling thread before each call, then passes the call on.
// The CUDA runtime keeps a current device per thread (device 0 until a thread sets another),
// and the bindings call a model from whichever thread of libuv's pool is free: a model on a GPU
// other than 0 (data parallel, one rank per GPU) selects its device at every call this way
// (train/cuda_runtime.cu), and when it is destroyed.
#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include "runtime.h"

namespace ml {

class BoundRuntime final : public Runtime {
 public:
  BoundRuntime(std::unique_ptr<Runtime> inner, std::function<void()> enter)
      : inner_(std::move(inner)), enter_(std::move(enter)) {}
  ~BoundRuntime() override {
    try {
      enter_();
    } catch (const std::exception&) {
      // Nothing better to do in a destructor than to free what it can where it stands.
    }
    inner_.reset();
  }

  DType dtype() const override { return inner_->dtype(); }
  int64_t vocab_size() const override { return inner_->vocab_size(); }
  std::vector<ParamInfo> params() override { return on()->params(); }
  void read(const std::string& name, Slot slot, void* dst, size_t bytes) override {
    on()->read(name, slot, dst, bytes);
  }
  void write(const std::string& name, Slot slot, const void* src, size_t bytes) override {
    on()->write(name, slot, src, bytes);
  }
  StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    return on()->evaluate(tokens, batch, len_plus_one);
  }
  StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    return on()->loss_and_gradients(tokens, batch, len_plus_one);
  }
  StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                         const OptimizerConfig& opt, int64_t micro_batches) override {
    return on()->train_step(tokens, batch, len_plus_one, lr, opt, micro_batches);
  }
  void generate_start(const GenerateRequest& request, void* last_logits) override {
    on()->generate_start(request, last_logits);
  }
  GenerateChunk generate_next(int64_t max_steps, double max_ms) override {
    return on()->generate_next(max_steps, max_ms);
  }
  void generate_feed(const int32_t* tokens, int64_t count, void* logits) override {
    on()->generate_feed(tokens, count, logits);
  }
  void parallel_logits(const int32_t* tokens, int64_t batch, int64_t len, void* logits) override {
    on()->parallel_logits(tokens, batch, len, logits);
  }
  int64_t steps_done() const override { return inner_->steps_done(); }
  void set_steps_done(int64_t steps) override { inner_->set_steps_done(steps); }
  void join_ranks(std::shared_ptr<Collective> ranks, bool shard_optimizer, bool expert_parallel) override {
    on()->join_ranks(std::move(ranks), shard_optimizer, expert_parallel);
  }
  void from_rank_zero(double* values, int64_t n) override { inner_->from_rank_zero(values, n); }
  int64_t optimizer_state_bytes() const override { return inner_->optimizer_state_bytes(); }
  ParamMemory parameter_memory() const override { return inner_->parameter_memory(); }

 private:
  // The wrapped runtime, once this thread is set up for it. dtype, vocab_size, the step count,
  // the optimizer's and parameters' sizes and rank 0's decisions are host values: they need no
  // device.
  Runtime* on() {
    enter_();
    return inner_.get();
  }

  std::unique_ptr<Runtime> inner_;
  std::function<void()> enter_;
};

}  // namespace ml
