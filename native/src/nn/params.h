// A model's parameters on a backend, in flat buffers: master weights, gradients, AdamW's two
// moments (B::Real) and, when the compute type differs, a compute copy (B::Act) that the
// optimizer refreshes. The moments cover a range of the flat buffers: all of them, or a
// data-parallel rank's share (ZeRO-1, dist/shards.h), and are made when first needed (the
// first training step, or moments written), so a rank that takes its share before then never
// holds the whole optimizer state. Layers declare each parameter once (name, shape, init,
// decay) while the model is built; allocate() then makes the buffers and draws every initial
// value on the backend's device from the seed (ops/param_init), so the CPU and the GPU start
// from the same bits. Names follow mamba_ssm's MambaLMHeadModel, so checkpoints map one to one onto it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
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
  // > 0: the leading dimension stacks this many experts' weights, which expert parallel shards
  // over the ranks in contiguous blocks (nn/moe.h); 0 for every other tensor.
  int64_t experts = 0;
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

  // Marks parameter i as `experts` experts' weights stacked on its leading dimension.
  void stack_experts(size_t i, int64_t experts) {
    ParamSpec& p = specs_.at(i);
    ML_CHECK(!p.shape.empty() && p.shape[0] == experts, "parameters: '", p.name, "' does not stack ", experts,
             " experts on its leading dimension");
    p.experts = experts;
  }

  // Makes the weights (drawn from `seed`) and the gradients (zero). Out of device memory, the
  // error says how many parameters asked for how much.
  void allocate(uint64_t seed) {
    ML_CHECK(!allocated(), "parameters: allocated twice");
    try {
      master_ = Buffer<Real>(total_, "model parameters");
      grad_ = Buffer<Real>(total_, "model gradients");
      if constexpr (kComputeCopy) compute_ = Buffer<Act>(total_, "compute copy of the weights");
    } catch (const cuda::OutOfDeviceMemory& e) {
      const double bytes = double(total_) * double(2 * sizeof(Real) + (kComputeCopy ? sizeof(Act) : 0));
      throw cuda::OutOfDeviceMemory(detail::concat(count(), " parameters need about ", gib(bytes),
                                                   " for weights and gradients alone. [", e.what(), "]"));
    }
    for (auto* buffer : {&master_, &grad_}) backend_.zero(buffer->get(), buffer->bytes());
    for (const auto& p : specs_) backend_.param_init(p.init, seed, p.name, master_.get() + p.offset, p.numel);
    refresh_compute();
    moments_end_ = total_;
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

  // The moments keep elements [begin, end) of the flat buffers from now on: values already
  // there in that range stay, the rest of it starts at zero, and the memory of the others goes.
  void share_moments(int64_t begin, int64_t end) {
    ML_CHECK(0 <= begin && begin <= end && end <= total_, "parameters: moments for [", begin, ", ", end,
             ") of ", total_, " elements");
    if (moments_made_) {
      Moments kept = new_moments(end - begin);
      const int64_t from = std::max(begin, moments_begin_), to = std::min(end, moments_end_);
      if (from < to)
        for (auto [dst, src] : {std::pair{kept.m.get(), m_.get()}, std::pair{kept.v.get(), v_.get()}})
          backend_.copy(dst + (from - begin), src + (from - moments_begin_), size_t(to - from) * sizeof(Real));
      m_ = std::move(kept.m), v_ = std::move(kept.v);
    }
    moments_begin_ = begin, moments_end_ = end;
  }
  // Makes the moments (zero) if they are not yet.
  void make_moments() {
    if (moments_made_) return;
    Moments made = new_moments(moments_end_ - moments_begin_);
    m_ = std::move(made.m), v_ = std::move(made.v);
    moments_made_ = true;
  }
  // Bytes the moments hold (0 until they are made).
  int64_t moment_bytes() const { return int64_t(m_.bytes() + v_.bytes()); }

  // The part of parameter i's moments held here: its elements [from, from + count) (count 0 when
  // none); m and v are null until the moments are made.
  struct MomentSpan {
    int64_t from, count;
    Real* m;
    Real* v;
  };
  MomentSpan moments_of(size_t i) const {
    const ParamSpec& p = specs_.at(i);
    const int64_t from = std::clamp(moments_begin_ - p.offset, int64_t{0}, p.numel);
    const int64_t to = std::clamp(moments_end_ - p.offset, from, p.numel);
    const int64_t at = p.offset + from - moments_begin_;
    if (!moments_made_ || from == to) return {from, to - from, nullptr, nullptr};
    return {from, to - from, m_.get() + at, v_.get() + at};
  }
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
  // Every master weight in one span: the ranks gather it after a sharded step.
  Real* masters() const { return master_.get(); }
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

  struct Moments {
    Buffer<Real> m, v;
  };
  Moments new_moments(int64_t n) const {
    Moments made;
    try {
      made.m = Buffer<Real>(n, "AdamW first moments");
      made.v = Buffer<Real>(n, "AdamW second moments");
    } catch (const cuda::OutOfDeviceMemory& e) {
      throw cuda::OutOfDeviceMemory(detail::concat("AdamW's moments of ", n, " parameters need about ",
                                                   gib(double(n) * double(2 * sizeof(Real))), ". [", e.what(), "]"));
    }
    if (n > 0)
      for (auto* buffer : {&made.m, &made.v}) backend_.zero(buffer->get(), buffer->bytes());
    return made;
  }

  const B& backend_;
  std::vector<ParamSpec> specs_;
  int64_t total_ = 0;
  Buffer<Real> master_, grad_, m_, v_;
  Buffer<Act> compute_;
  int64_t moments_begin_ = 0, moments_end_ = 0;
  bool moments_made_ = false;
};

}  // namespace ml
