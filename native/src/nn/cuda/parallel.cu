// Branch 0 writes y (dx) directly; every further branch writes a scratch buffer that is then
// added in (ops/add), in branch order, so the sum's order is fixed.
#include <cuda_bf16.h>

#include "../../core/device_allocator.h"
#include "../../core/error.h"
#include "../../ops/add/add.h"
#include "parallel.h"

namespace ml::cuda {
namespace {

template <typename T>
class ParallelLayer final : public Layer<T> {
 public:
  ParallelLayer(int64_t d, std::vector<std::unique_ptr<Layer<T>>> branches, const Context& ctx)
      : d_(d), branches_(std::move(branches)), ctx_(ctx) {
    ML_CHECK(!branches_.empty(), "parallel (cuda): a group needs at least one branch");
  }

  void forward(const T* x, T* y, int64_t batch, int64_t len) override {
    size_ = batch * len * d_;
    for (size_t b = 0; b < branches_.size(); ++b) {
      branches_[b]->forward(x, b ? scratch() : y, batch, len);
      if (b) add_into<T>(part_.get(), y, size_, ctx_.stream);
    }
  }

  void backward(const T* dy, T* dx) override {
    for (size_t b = 0; b < branches_.size(); ++b) {
      branches_[b]->backward(dy, b ? scratch() : dx);
      if (b) add_into<T>(part_.get(), dx, size_, ctx_.stream);
    }
  }

  void set_training(bool training) override {
    for (auto& b : branches_) b->set_training(training);
  }

  bool capturable() const override {
    for (const auto& b : branches_)
      if (!b->capturable()) return false;
    return true;
  }

  void expert_stats(std::vector<DeviceExpertStats>& out) const override {
    for (const auto& b : branches_) b->expert_stats(out);
  }

 private:
  // Reused by every branch after the first: each is added in before the next is written,
  // and all of it runs on the one stream.
  T* scratch() {
    if (part_.size() != size_) part_ = DeviceBuffer<T>(size_, "parallel branch output");
    return part_.get();
  }

  int64_t d_;
  std::vector<std::unique_ptr<Layer<T>>> branches_;
  const Context& ctx_;
  int64_t size_ = 0;
  DeviceBuffer<T> part_;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_parallel_layer(int64_t d_model, std::vector<std::unique_ptr<Layer<T>>> branches,
                                              const Context& context) {
  return std::make_unique<ParallelLayer<T>>(d_model, std::move(branches), context);
}

template std::unique_ptr<Layer<float>> make_parallel_layer<float>(int64_t, std::vector<std::unique_ptr<Layer<float>>>,
                                                                  const Context&);
template std::unique_ptr<Layer<__nv_bfloat16>> make_parallel_layer<__nv_bfloat16>(
    int64_t, std::vector<std::unique_ptr<Layer<__nv_bfloat16>>>, const Context&);

}  // namespace ml::cuda
