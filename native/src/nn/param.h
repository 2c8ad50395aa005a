// A named model parameter with its gradient. Names follow mamba_ssm's MambaLMHeadModel so
// that checkpoints map one to one onto the reference implementation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace ml {

template <typename T>
struct Param {
  std::string name;
  Tensor<T> value;
  Tensor<T> grad;
  bool weight_decay;  // false for norms, biases, A_log and D
  Shape file_shape;   // shape in checkpoints (e.g. conv1d.weight is (dim, 1, width) as in torch)
};

// Owns parameters in registration order. Each Param lives in its own allocation, so the
// references layers keep stay valid as more parameters are added.
template <typename T>
class ParamList {
 public:
  Param<T>& add(std::string name, Shape shape, bool weight_decay, Shape file_shape = {}) {
    auto p = std::make_unique<Param<T>>();
    p->name = std::move(name);
    p->value = Tensor<T>::zeros(shape);
    p->grad = Tensor<T>::zeros(shape);
    p->weight_decay = weight_decay;
    p->file_shape = file_shape.empty() ? shape : std::move(file_shape);
    params_.push_back(std::move(p));
    return *params_.back();
  }
  size_t size() const { return params_.size(); }
  Param<T>& operator[](size_t i) { return *params_[i]; }
  const Param<T>& operator[](size_t i) const { return *params_[i]; }

  Param<T>& find(const std::string& name) {
    for (auto& p : params_)
      if (p->name == name) return *p;
    throw Error("no parameter named '" + name + "'");
  }

 private:
  std::vector<std::unique_ptr<Param<T>>> params_;
};

}  // namespace ml
