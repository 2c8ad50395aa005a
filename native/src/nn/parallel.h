// A parallel group such as "(M|E)": every branch reads the same normed input and their
// outputs are summed into one residual update (parallel MoE-Mamba).
#pragma once
#include <memory>
#include <vector>

#include "../core/tensor.h"
#include "layer.h"

namespace ml {

template <typename T>
class ParallelLayer final : public Layer<T> {
 public:
  ParallelLayer(int64_t d_model, std::vector<std::unique_ptr<Layer<T>>> branches)
      : d_model_(d_model), branches_(std::move(branches)) {}

  void forward(const T* x, T* y, int64_t batch, int64_t len) override {
    size_ = batch * len * d_model_;
    Tensor<T> part({size_});
    for (size_t b = 0; b < branches_.size(); ++b) {
      branches_[b]->forward(x, b ? part.data() : y, batch, len);
      if (b) add(part.data(), y);
    }
  }

  void backward(const T* dy, T* dx) override {
    Tensor<T> part({size_});
    for (size_t b = 0; b < branches_.size(); ++b) {
      branches_[b]->backward(dy, b ? part.data() : dx);
      if (b) add(part.data(), dx);
    }
  }

  void set_training(bool training) override {
    for (auto& b : branches_) b->set_training(training);
  }
  double aux_loss() const override {
    double total = 0;
    for (const auto& b : branches_) total += b->aux_loss();
    return total;
  }
  void routings(std::vector<const cpu::Routing*>& out) const override {
    for (const auto& b : branches_) b->routings(out);
  }

 private:
  void add(const T* src, T* dst) const {
    for (int64_t i = 0; i < size_; ++i) dst[i] += src[i];
  }

  int64_t d_model_;
  std::vector<std::unique_ptr<Layer<T>>> branches_;
  int64_t size_ = 0;
};

}  // namespace ml
