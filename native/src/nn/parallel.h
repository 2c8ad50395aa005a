// A parallel group such as "(M|E)": every branch reads the same normed input and their
// outputs are summed into one residual update (parallel MoE-Mamba). Branch 0 writes y (dx)
// directly; each later branch writes a scratch buffer that is then added in, in branch order,
// so the sum's order is fixed.
#pragma once
#include <memory>
#include <vector>

#include "layer.h"

namespace ml {

template <class B>
class ParallelLayer final : public Layer<B> {
 public:
  using Act = typename B::Act;

  ParallelLayer(const B& backend, int64_t d_model, std::vector<std::unique_ptr<Layer<B>>> branches)
      : b_(backend), d_(d_model), branches_(std::move(branches)) {
    ML_CHECK(!branches_.empty(), "parallel: a group needs at least one branch");
  }

  void forward(const Act* x, Act* y, int64_t batch, int64_t len) override {
    each_branch(y, batch * len * d_, [&](Layer<B>& branch, Act* out) { branch.forward(x, out, batch, len); });
  }

  void backward(const Act* dy, Act* dx) override {
    for (size_t i = 0; i < branches_.size(); ++i) {
      branches_[i]->backward(dy, i ? scratch() : dx);
      if (i) b_.add_into(part_.get(), dx, size_);
    }
  }

  void start_generation(int64_t batch, int64_t capacity) override {
    for (auto& branch : branches_) branch->start_generation(batch, capacity);
  }
  void prefill(const Act* x, Act* y, int64_t len, int64_t row) override {
    each_branch(y, len * d_, [&](Layer<B>& branch, Act* out) { branch.prefill(x, out, len, row); });
  }
  void decode(const Act* x, Act* y, const DecodeStep& step) override {
    each_branch(y, step.batch * d_, [&](Layer<B>& branch, Act* out) { branch.decode(x, out, step); });
  }

  void set_training(bool training) override {
    for (auto& branch : branches_) branch->set_training(training);
  }
  bool capturable() const override {
    for (const auto& branch : branches_)
      if (!branch->capturable()) return false;
    return true;
  }
  void expert_stats(std::vector<ExpertStats>& out) const override {
    for (const auto& branch : branches_) branch->expert_stats(out);
  }
  void share_experts(Collective* ranks) override {
    for (auto& branch : branches_) branch->share_experts(ranks);
  }

 private:
  // Runs `run(branch, out)` for every branch, summing their `size` outputs into y in branch order.
  template <typename Run>
  void each_branch(Act* y, int64_t size, Run&& run) {
    size_ = size;
    for (size_t i = 0; i < branches_.size(); ++i) {
      run(*branches_[i], i ? scratch() : y);
      if (i) b_.add_into(part_.get(), y, size_);
    }
  }

  // Reused by every branch after the first: each is added in before the next writes it.
  Act* scratch() {
    if (part_.size() != size_) part_ = typename B::template Buffer<Act>(size_, "parallel branch output");
    return part_.get();
  }

  const B& b_;
  int64_t d_;
  std::vector<std::unique_ptr<Layer<B>>> branches_;
  int64_t size_ = 0;
  typename B::template Buffer<Act> part_;
};

}  // namespace ml
