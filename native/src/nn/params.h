// A model's parameters on a backend, in flat buffers: master weights, gradients, AdamW's two
// moments (B::Real) and, when the compute type differs, a compute copy (B::Act) that the
// optimizer refreshes. Layers declare each parameter once (name, shape, init, decay) while the
// model is built; allocate() then makes the buffers and draws every initial value on the
// backend's device from the seed (ops/param_init), so the CPU and the GPU start from the same
// bits. Names follow mamba_ssm's MambaLMHeadModel, so checkpoints map one to one onto it.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/bytes.h"
#include "../core/device_allocator.h"
#include "../core/error.h"
#include "../core/shape.h"
#include "../ops/param_init/param_init.h"

namespace ml {

struct ParamSpec {
  std::string name;
  Shape shape;
  Shape file_shape;   // shape in checkpoints (conv1d.weight is (dim, 1, width) as in torch)
  bool weight_decay;  // false for norms, biases, A_log and D
  ParamInit init;
  int64_t offset = 0, numel = 0;  // into the flat buffers, in elements
};

template <class B>
class ParamStore {
 public:
  using Act = typename B::Act;
  using Real = typename B::Real;
  static constexpr bool kComputeCopy = !std::is_same_v<Act, Real>;

  using Backend = B;

  explicit ParamStore(const B& backend) : backend_(backend) {}
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  const B& backend() const { return backend_; }

  // Declares a parameter (before allocate); returns its index.
  size_t add(std::string name, Shape shape, bool weight_decay, ParamInit init, Shape file_shape = {}) {
    ML_CHECK(!allocated(), "parameters: '", name, "' declared after allocation");
    for (const auto& p : specs_) ML_CHECK(p.name != name, "parameters: '", name, "' declared twice");
    ParamSpec p{std::move(name), shape, file_shape.empty() ? shape : std::move(file_shape), weight_decay, init};
    p.numel = shape_numel(p.shape);
    p.offset = total_;
    total_ += (p.numel + 63) / 64 * 64;  // 256-byte aligned tensors: vector loads and cuBLASLt
    specs_.push_back(std::move(p));
    return specs_.size() - 1;
  }

  // Makes the buffers: weights drawn from `seed`, gradients and moments zero. Out of device
  // memory, the error says how many parameters asked for how much.
  void allocate(uint64_t seed) {
    ML_CHECK(!allocated(), "parameters: allocated twice");
    try {
      master_ = Buffer<Real>(total_, "model parameters");
      grad_ = Buffer<Real>(total_, "model gradients");
      m_ = Buffer<Real>(total_, "AdamW first moments");
      v_ = Buffer<Real>(total_, "AdamW second moments");
      if constexpr (kComputeCopy) compute_ = Buffer<Act>(total_, "compute copy of the weights");
    } catch (const cuda::OutOfDeviceMemory& e) {
      const double bytes = double(total_) * double(4 * sizeof(Real) + (kComputeCopy ? sizeof(Act) : 0));
      throw cuda::OutOfDeviceMemory(detail::concat(count(), " parameters need about ", gib(bytes),
                                                   " for weights, gradients and AdamW state alone. [", e.what(), "]"));
    }
    for (auto* buffer : {&master_, &grad_, &m_, &v_}) backend_.zero(buffer->get(), buffer->bytes());
    for (const auto& p : specs_) backend_.param_init(p.init, seed, p.name, master_.get() + p.offset, p.numel);
    refresh_compute();
  }
  bool allocated() const { return master_.get() != nullptr; }

  size_t size() const { return specs_.size(); }
  const ParamSpec& spec(size_t i) const { return specs_.at(i); }
  // Throws naming the parameter when there is none of that name.
  size_t index(const std::string& name) const {
    for (size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].name == name) return i;
    throw Error("no parameter named '" + name + "'");
  }

  Real* master(size_t i) const { return master_.get() + specs_[i].offset; }
  Real* grad(size_t i) const { return grad_.get() + specs_[i].offset; }
  Real* first_moment(size_t i) const { return m_.get() + specs_[i].offset; }
  Real* second_moment(size_t i) const { return v_.get() + specs_[i].offset; }
  // The weights as the layers multiply by them: the compute copy, or the master weights.
  Act* compute(size_t i) const {
    if constexpr (kComputeCopy) {
      return compute_.get() + specs_[i].offset;
    } else {
      return master_.get() + specs_[i].offset;
    }
  }

  // Every gradient in one span (padding between tensors stays zero): zeroing, clipping.
  Real* grads() const { return grad_.get(); }
  int64_t total() const { return total_; }
  int64_t count() const {
    int64_t n = 0;
    for (const auto& p : specs_) n += p.numel;
    return n;
  }
  // Copies the master weights into the compute copy (after they were written): all, or one.
  void refresh_compute() const {
    if constexpr (kComputeCopy) backend_.to_act(master_.get(), compute_.get(), total_);
  }
  void refresh_compute(size_t i) const {
    if constexpr (kComputeCopy) backend_.to_act(master(i), compute(i), specs_[i].numel);
  }

 private:
  template <typename U>
  using Buffer = typename B::template Buffer<U>;

  const B& backend_;
  std::vector<ParamSpec> specs_;
  int64_t total_ = 0;
  Buffer<Real> master_, grad_, m_, v_;
  Buffer<Act> compute_;
};

}  // namespace ml
