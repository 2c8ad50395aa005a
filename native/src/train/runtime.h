// The engine as the bindings see it: one model with its optimizer, whatever the element
// type, behind a type-erased interface. Tensors cross it as raw bytes of dtype().
// A model runs one job at a time; try_acquire/release guard that from the JS side.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "../core/tensor.h"
#include "../nn/lm.h"
#include "step.h"

namespace ml {

struct ParamInfo {
  std::string name;
  Shape shape, file_shape;
  bool weight_decay;
};

// Which buffer of a parameter: its value, its gradient, or AdamW's first/second moment.
enum class Slot { Value, Grad, FirstMoment, SecondMoment };

class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual DType dtype() const = 0;
  virtual std::vector<ParamInfo> params() = 0;
  virtual void read(const std::string& name, Slot slot, void* dst, size_t bytes) = 0;
  virtual void write(const std::string& name, Slot slot, const void* src, size_t bytes) = 0;

  // Inference-mode loss (routers as at inference), with the routing it used.
  virtual StepMetrics evaluate(const int32_t* tokens, int64_t batch, int64_t len_plus_one) = 0;
  // Zeroes gradients, then a training-mode forward and backward; gradients stay readable.
  virtual StepMetrics loss_and_gradients(const int32_t* tokens, int64_t batch, int64_t len_plus_one) = 0;
  virtual StepMetrics train_step(const int32_t* tokens, int64_t batch, int64_t len_plus_one, double lr,
                                 const OptimizerConfig& opt) = 0;
  virtual int64_t steps_done() const = 0;
  virtual void set_steps_done(int64_t steps) = 0;

  bool try_acquire() { return !busy_.exchange(true); }
  void release() { busy_ = false; }

 private:
  std::atomic<bool> busy_{false};
};

std::unique_ptr<Runtime> make_runtime(const ModelConfig& config, DType dtype);

}  // namespace ml
