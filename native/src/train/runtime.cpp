#include "runtime.h"

#include <cstring>

namespace ml {
namespace {

template <typename T>
class TypedRuntime final : public Runtime {
 public:
  explicit TypedRuntime(const ModelConfig& config) : model_(config), step_(model_) {}

  DType dtype() const override { return dtype_of<T>(); }

  std::vector<ParamInfo> params() override {
    std::vector<ParamInfo> out;
    auto& ps = model_.params();
    for (size_t i = 0; i < ps.size(); ++i)
      out.push_back({ps[i].name, ps[i].value.shape(), ps[i].file_shape, ps[i].weight_decay});
    return out;
  }

  void read(const std::string& name, Slot slot, void* dst, size_t bytes) override {
    Tensor<T>& t = buffer(name, slot);
    check_size(name, t, bytes);
    std::memcpy(dst, t.data(), bytes);
  }

  void write(const std::string& name, Slot slot, const void* src, size_t bytes) override {
    Tensor<T>& t = buffer(name, slot);
    check_size(name, t, bytes);
    std::memcpy(t.data(), src, bytes);
  }

  StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    const double loss = model_.forward(tokens, batch, len_plus_one, false);
    return {loss, model_.aux_loss(), 0.0, expert_counts(model_)};
  }

  StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) override {
    model_.zero_grad();
    const double loss = model_.forward(tokens, batch, len_plus_one);
    model_.backward();
    return {loss, model_.aux_loss(), 0.0, expert_counts(model_)};
  }

  StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                         const OptimizerConfig& opt) override {
    return step_.run(tokens, batch, len_plus_one, lr, opt);
  }

  int64_t steps_done() const override { return step_.steps_done(); }
  void set_steps_done(int64_t steps) override { step_.set_steps_done(steps); }

 private:
  Tensor<T>& buffer(const std::string& name, Slot slot) {
    auto& ps = model_.params();
    for (size_t i = 0; i < ps.size(); ++i) {
      if (ps[i].name != name) continue;
      switch (slot) {
        case Slot::Value: return ps[i].value;
        case Slot::Grad: return ps[i].grad;
        case Slot::FirstMoment: return step_.first_moment(i);
        case Slot::SecondMoment: return step_.second_moment(i);
      }
    }
    throw Error("no parameter named '" + name + "'");
  }

  static void check_size(const std::string& name, const Tensor<T>& t, size_t bytes) {
    ML_CHECK(bytes == size_t(t.numel()) * sizeof(T), "parameter '", name, "': expected ", t.numel(), " ",
             dtype_name(dtype_of<T>()), " values of shape ", shape_str(t.shape()), ", got ", bytes / sizeof(T));
  }

  LanguageModel<T> model_;
  TrainStep<T> step_;
};

}  // namespace

std::unique_ptr<Runtime> make_runtime(const ModelConfig& config, DType dtype, const RuntimeOptions& options) {
  if (options.device == Device::Cuda) {
    ML_CHECK(dtype == DType::F32, "device cuda: dtype must be float32 (fp32 master weights; choose the compute "
             "precision with precision 'bf16' or 'fp32'), got ", dtype_name(dtype));
    return make_cuda_runtime(config, options);
  }
  if (dtype == DType::F64) return std::make_unique<TypedRuntime<double>>(config);
  return std::make_unique<TypedRuntime<float>>(config);
}

}  // namespace ml
