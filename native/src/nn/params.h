// A model's parameters on a backend, in flat buffers: master weights, gradients, AdamW's two
// moments (B::Real) and, when the compute type differs, a compute copy (B::Act) that the
// optimizer refreshes. The moments cover a range of the flat buffers: all of them, or a
// data-parallel rank's share (ZeRO-1, dist/shards.h), and are made when first needed (the
// first training step, or moments written), so a rank that takes its share before then never
// holds the whole optimizer state. Under expert parallel a rank holds, of each tensor of stacked
// experts, only its block of the experts (keep_expert_block): the flat buffers are laid out over
// what is held, so the other ranks' experts take no memory here at all. Layers declare each
// parameter once (name, shape, init, decay) while the model is built; allocate() then makes the
// buffers and draws every initial value held on the backend's device from the seed
// (ops/param_init), so the CPU and the GPU start from the same bits, and a block of experts from
// the bits the whole tensor has there. Names follow mamba_ssm's MambaLMHeadModel, so checkpoints
// map one to one onto it.
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
  int64_t numel = 0;  // the whole tensor's elements
  // > 0: the leading dimension stacks this many experts' weights, which expert parallel shards
  // over the ranks in contiguous blocks (nn/moe.h); 0 for every other tensor.
  int64_t experts = 0;
  // The elements held here, [first, first + held) of the tensor (all of it, or under expert
  // parallel this rank's block of the experts), at `offset` in the flat buffers.
  int64_t first = 0, held = 0, offset = 0;
};

// Bytes of a model's parameter buffers held now, as allocated (0 before one is made), and of
// each the part the tensors of stacked experts take (their held part with its padding).
struct ParamMemory {
  struct Held {
    int64_t bytes = 0, experts = 0;
  };
  Held weights, compute, gradients, moments;  // compute: the compute copy, where there is one
  int64_t expert_sources = 0;                 // ParamStore::keep_expert_sources' blocks, during a step
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
    p.numel = p.held = shape_numel(p.shape);
    specs_.push_back(std::move(p));
    total_ = lay_out(specs_);
    return specs_.size() - 1;
  }

  // Marks parameter i as `experts` experts' weights stacked on its leading dimension.
  void stack_experts(size_t i, int64_t experts) {
    ParamSpec& p = specs_.at(i);
    ML_CHECK(!p.shape.empty() && p.shape[0] == experts, "parameters: '", p.name, "' does not stack ", experts,
             " experts on its leading dimension");
    p.experts = experts;
  }

  // Makes the weights held here (drawn from `seed`) and the gradients (zero). Out of device
  // memory, the error says how many parameters asked for how much.
  void allocate(uint64_t seed) {
    ML_CHECK(!allocated(), "parameters: allocated twice");
    try {
      master_ = Buffer<Real>(total_, "model parameters");
      grad_ = Buffer<Real>(total_, "model gradients");
      if constexpr (kComputeCopy) compute_ = Buffer<Act>(total_, "compute copy of the weights");
    } catch (const cuda::OutOfDeviceMemory& e) {
      const double bytes = double(total_) * double(2 * sizeof(Real) + (kComputeCopy ? sizeof(Act) : 0));
      const std::string share = held_count() < count() ? detail::concat(" (this rank's of ", count(), ")") : "";
      throw cuda::OutOfDeviceMemory(detail::concat(held_count(), " parameters", share, " need about ", gib(bytes),
                                                   " for weights and gradients alone. [", e.what(), "]"));
    }
    for (auto* buffer : {&master_, &grad_}) backend_.zero(buffer->get(), buffer->bytes());
    for (const auto& p : specs_)
      backend_.param_init(p.init, seed, p.name, master_.get() + p.offset, p.held, p.first);
    refresh_compute();
  }
  bool allocated() const { return master_.get() != nullptr; }

  // Expert parallel: from now on this store holds, of each tensor of stacked experts
  // (ParamSpec::experts), only block `rank` of its experts cut into `world` equal blocks (its
  // weights, gradient, moments and compute copy), and every other tensor whole; world 1: every
  // tensor whole. Before allocate() only the layout changes; after, the buffers are made again
  // over the new layout, keeping the bits of what stays (which must be held already: a block
  // given away cannot come back, a checkpoint can bring it). Not with the moments shared
  // (share_moments): ZeRO-1's shares would cut across the blocks.
  void keep_expert_block(int rank, int world) {
    ML_CHECK(world >= 1 && rank >= 0 && rank < world, "parameters: rank ", rank, " of ", world);
    std::vector<ParamSpec> next = specs_;
    bool same = true;
    for (size_t i = 0; i < next.size(); ++i) {
      ParamSpec& p = next[i];
      const ParamSpec& now = specs_[i];
      if (p.experts == 0) continue;
      ML_CHECK(p.experts % world == 0, "parameters: '", p.name, "' stacks ", p.experts,
               " experts, which do not split into ", world, " equal blocks");
      p.held = p.numel / world, p.first = p.held * rank;
      ML_CHECK(!allocated() || (now.first <= p.first && p.first + p.held <= now.first + now.held), "parameters: '",
               p.name, "' holds elements [", now.first, ", ", now.first + now.held, ") here, not [", p.first, ", ",
               p.first + p.held, ")");
      same = same && p.first == now.first && p.held == now.held;
    }
    if (same) return;
    ML_CHECK(moments_begin_ == 0 && moments_end() == total_,
             "parameters: experts cannot be kept in blocks while the moments are shared");
    const int64_t total = lay_out(next);
    if (allocated()) {  // made whole before any is replaced: out of memory changes nothing
      Buffer<Real> master = laid_out(master_, next, total, "model parameters");
      Buffer<Real> grad = laid_out(grad_, next, total, "model gradients");
      Buffer<Act> compute;
      if constexpr (kComputeCopy) compute = laid_out(compute_, next, total, "compute copy of the weights");
      Buffer<Real> m = moments_made_ ? laid_out(m_, next, total, "AdamW first moments") : Buffer<Real>();
      Buffer<Real> v = moments_made_ ? laid_out(v_, next, total, "AdamW second moments") : Buffer<Real>();
      master_ = std::move(master), grad_ = std::move(grad), compute_ = std::move(compute);
      m_ = std::move(m), v_ = std::move(v);
    }
    specs_ = std::move(next), total_ = total, moments_end_ = kWhole;
  }

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
      const int64_t from = std::max(begin, moments_begin_), to = std::min(end, moments_end());
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
    Moments made = new_moments(moments_end() - moments_begin_);
    m_ = std::move(made.m), v_ = std::move(made.v);
    moments_made_ = true;
  }
  // Bytes the moments hold (0 until they are made).
  int64_t moment_bytes() const { return int64_t(m_.bytes() + v_.bytes()); }

  // The part of parameter i's moments held here: elements [from, from + count) of those it holds
  // (master(i)[from] on; count 0 when none); m and v are null until the moments are made.
  struct MomentSpan {
    int64_t from, count;
    Real* m;
    Real* v;
  };
  MomentSpan moments_of(size_t i) const {
    const ParamSpec& p = specs_.at(i);
    const int64_t from = std::clamp(moments_begin_ - p.offset, int64_t{0}, p.held);
    const int64_t to = std::clamp(moments_end() - p.offset, from, p.held);
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
  // The model's parameters, and those held here (fewer under expert parallel).
  int64_t count() const {
    int64_t n = 0;
    for (const auto& p : specs_) n += p.numel;
    return n;
  }
  int64_t held_count() const {
    int64_t n = 0;
    for (const auto& p : specs_) n += p.held;
    return n;
  }

  // Expert parallel with micro-batches: the gradients other ranks' tokens leave in this rank's
  // experts, kept apart, one block per source rank, until the step adds them in rank order
  // (train/step.h). keep_expert_sources(n) makes n such blocks of every expert tensor's held
  // part, zero (0: none, and frees them); expert_source(i, s) is block s of tensor i (null when
  // there is none).
  void keep_expert_sources(int64_t n) {
    ML_CHECK(n >= 0, "parameters: ", n, " blocks of expert gradients");
    sources_ = {}, kept_sources_ = 0;  // freed before the next are made
    if (n == 0) return;
    int64_t each = 0;
    source_at_.assign(specs_.size(), -1);
    for (size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].experts > 0) source_at_[i] = each, each += padded(specs_[i].held);
    sources_ = Buffer<Real>(n * each, "expert gradients from other ranks' tokens");
    backend_.zero(sources_.get(), sources_.bytes());
    source_stride_ = each, kept_sources_ = n;
  }
  int64_t expert_sources() const { return kept_sources_; }
  Real* expert_source(size_t i, int64_t s) const {
    if (s < 0 || s >= kept_sources_ || source_at_.at(i) < 0) return nullptr;
    return sources_.get() + s * source_stride_ + source_at_[i];
  }

  // The buffers' bytes now (ParamMemory).
  ParamMemory memory() const {
    ParamMemory out;
    const auto held = [&](size_t bytes, int64_t begin, int64_t end, size_t element) {
      ParamMemory::Held h{int64_t(bytes), 0};
      if (bytes == 0) return h;
      for (const ParamSpec& p : specs_)
        if (p.experts > 0)
          h.experts += std::max<int64_t>(0, std::min(end, p.offset + padded(p.held)) - std::max(begin, p.offset));
      h.experts *= int64_t(element);
      return h;
    };
    out.weights = held(master_.bytes(), 0, total_, sizeof(Real));
    if constexpr (kComputeCopy) out.compute = held(compute_.bytes(), 0, total_, sizeof(Act));
    out.gradients = held(grad_.bytes(), 0, total_, sizeof(Real));
    out.moments = held(m_.bytes() + v_.bytes(), moments_begin_, moments_end(), 2 * sizeof(Real));
    out.expert_sources = int64_t(sources_.bytes());
    return out;
  }
  // Copies the master weights into the compute copy (after they were written): all, or one.
  void refresh_compute() const {
    if constexpr (kComputeCopy) backend_.to_act(master_.get(), compute_.get(), total_);
  }
  void refresh_compute(size_t i) const {
    if constexpr (kComputeCopy) backend_.to_act(master(i), compute(i), specs_[i].held);
  }

 private:
  template <typename U>
  using Buffer = typename B::template Buffer<U>;

  // 256-byte aligned tensors: vector loads and cuBLASLt.
  static int64_t padded(int64_t n) { return (n + 63) / 64 * 64; }
  // Each tensor's held part at its offset, in order; returns the elements of the flat buffers.
  static int64_t lay_out(std::vector<ParamSpec>& specs) {
    int64_t total = 0;
    for (ParamSpec& p : specs) p.offset = total, total += padded(p.held);
    return total;
  }
  // `from` (laid out as specs_) copied into a buffer laid out as `next`, what `next` holds of each
  // tensor (held in `from` too); the padding is zero.
  template <typename U>
  Buffer<U> laid_out(const Buffer<U>& from, const std::vector<ParamSpec>& next, int64_t total, const char* what) const {
    Buffer<U> to(total, what);
    backend_.zero(to.get(), to.bytes());
    for (size_t i = 0; i < next.size(); ++i)
      backend_.copy(to.get() + next[i].offset, from.get() + specs_[i].offset + (next[i].first - specs_[i].first),
                    size_t(next[i].held) * sizeof(U));
    return to;
  }
  // The moments' range ends at the end of the buffers unless shared.
  static constexpr int64_t kWhole = -1;
  int64_t moments_end() const { return moments_end_ == kWhole ? total_ : moments_end_; }

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
  int64_t moments_begin_ = 0, moments_end_ = kWhole;
  bool moments_made_ = false;
  // keep_expert_sources: the blocks, each expert tensor's place in a block, a block's length.
  Buffer<Real> sources_;
  std::vector<int64_t> source_at_;
  int64_t source_stride_ = 0, kept_sources_ = 0;
};

}  // namespace ml
