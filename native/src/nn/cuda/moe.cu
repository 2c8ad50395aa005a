// The mixture of experts on the GPU.
//   Forward: router linear → route_forward (ops/router) → each kept assignment a (= choice ·
//   tokens + token) gets a slot in an expert-contiguous layout: expert e's rows start at
//   offset(e) and its assignments follow in order a (the router's rank), as the CPU layer
//   gathers them → rows gathered into those slots (empty slots zero) → the experts'
//   feed-forward blocks (ffn.h) → y[t] = Σ over t's kept choices, in choice order, of
//   gate · out[slot].
//   Backward: dgate = ⟨dy[t], out[slot]⟩ (a warp per assignment), the slots' dy scaled by their
//   gates (empty slots zero), the experts' backward, dx[t] = Σ over t's kept choices of
//   dx[slot], then route_backward and the router linear's backward adding into dx.
//   No atomics anywhere: every sum has a fixed order.
// Layouts:
//   capacity (capacity_factor > 0): every expert has capacity C slots, offset(e) = e · C, and
//   the experts run as one strided batch of E blocks of C rows. C is known on the host, so the
//   layer never synchronises. Padding rows are zero in x and dy: they add nothing to any
//   gradient.
//   dropless: expert e's slots are its count rounded up to kSegmentRows (alignment, and a
//   bounded number of GEMM shapes for cuBLASLt's plan cache), offsets prefix-summed on the
//   device; the experts run one GEMM chain each, whose row counts the host must know: the
//   forward copies the counts to the host once (the layer's only synchronisation; it also
//   keeps a dropless MoE out of CUDA-graph capture). The backward reuses them.
#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/error.h"
#include "../../ops/linear/linear.h"
#include "ffn.h"
#include "moe.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int64_t kSegmentRows = 64;

// Dropless: offset(e) = Σ_{e' < e} counts[e'] rounded up to kSegmentRows (E is small).
__global__ void segment_offsets_kernel(const int64_t* __restrict__ counts, int experts, int64_t* __restrict__ offset) {
  int64_t run = 0;
  for (int e = 0; e < experts; ++e) {
    offset[e] = run;
    run += (counts[e] + kSegmentRows - 1) / kSegmentRows * kSegmentRows;
  }
}

// slot[a] = offset(e) + rank, or −1 when dropped; source[slot] = a (filled with −1 first).
// offset(e) = offsets[e], or e · capacity when offsets is null.
__global__ void place_kernel(const int32_t* __restrict__ expert, const uint8_t* __restrict__ kept,
                             const int32_t* __restrict__ rank, const int64_t* __restrict__ offsets, int64_t capacity,
                             int64_t assignments, int32_t* __restrict__ slot, int32_t* __restrict__ source) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < assignments;
       a += int64_t(gridDim.x) * blockDim.x) {
    if (!kept[a]) {
      slot[a] = -1;
      continue;
    }
    const int e = expert[a];
    const int64_t s = (offsets ? offsets[e] : e * capacity) + rank[a];
    slot[a] = int32_t(s);
    source[s] = int32_t(a);
  }
}

// dst[s] = scale[a] · src[a mod tokens] for the slot's assignment a (scale null: 1); empty
// slots get zeros.
template <typename T>
__global__ void gather_kernel(const T* __restrict__ src, const T* __restrict__ scale,
                              const int32_t* __restrict__ source, int64_t slots, int64_t tokens, int64_t d,
                              T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < slots * d;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = i / d, j = i - s * d;
    const int32_t a = source[s];
    float v = 0.f;
    if (a >= 0) v = to_float(src[(a % tokens) * d + j]) * (scale ? to_float(scale[a]) : 1.f);
    dst[i] = from_float<T>(v);
  }
}

// dst[t] = Σ_c scale[a] · src[slot[a]] over t's kept assignments a = c · tokens + t, in choice
// order (scale null: 1).
template <typename T>
__global__ void combine_kernel(const T* __restrict__ src, const T* __restrict__ scale, const int32_t* __restrict__ slot,
                               int64_t tokens, int top_k, int64_t d, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < tokens * d;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / d, j = i - t * d;
    float v = 0.f;
    for (int c = 0; c < top_k; ++c) {
      const int64_t a = int64_t(c) * tokens + t;
      const int32_t s = slot[a];
      if (s >= 0) v += to_float(src[int64_t(s) * d + j]) * (scale ? to_float(scale[a]) : 1.f);
    }
    dst[i] = from_float<T>(v);
  }
}

// dgates[a] = ⟨dy[t], out[slot[a]]⟩, 0 when dropped: one warp per assignment.
template <typename T>
__global__ void gate_grad_kernel(const T* __restrict__ dy, const T* __restrict__ out, const int32_t* __restrict__ slot,
                                 int64_t tokens, int64_t assignments, int64_t d, T* __restrict__ dgates) {
  const int lane = threadIdx.x & 31;
  const int64_t a = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (a >= assignments) return;
  const int32_t s = slot[a];
  float v = 0.f;
  if (s >= 0) {
    const T* g = dy + (a % tokens) * d;
    const T* o = out + int64_t(s) * d;
    for (int64_t j = lane; j < d; j += 32) v += to_float(g[j]) * to_float(o[j]);
  }
  v = warp_sum(v);
  if (lane == 0) dgates[a] = from_float<T>(v);
}

template <typename T>
void resize(DeviceBuffer<T>& buffer, int64_t n) {
  if (buffer.size() != n) buffer = DeviceBuffer<T>(n, "moe");
}

template <typename T>
class MoeLayer final : public Layer<T> {
 public:
  MoeLayer(int64_t d, const MoeConfig& cfg, DeviceParams<T>& params, const std::string& prefix, const Context& ctx)
      : d_(d),
        cfg_(cfg),
        params_(params),
        ctx_(ctx),
        router_w_(params.index(prefix + "router.weight")),
        router_b_(cfg.router_bias ? params.index(prefix + "router.bias") : kNone),
        fc1_(params.index(prefix + "experts.fc1.weight")),
        fc2_(params.index(prefix + "experts.fc2.weight")) {
    ML_CHECK(cfg.num_experts >= 1, "moe (cuda): num_experts must be at least 1, got ", cfg.num_experts);
    ML_CHECK(cfg.expert.hidden > 0, "moe (cuda): expert hidden size must be positive, got ", cfg.expert.hidden);
    ML_CHECK(cfg.router.top_k >= 1 && cfg.router.top_k <= cfg.num_experts, "moe (cuda): top_k must be in [1, ",
             cfg.num_experts, "], got ", cfg.router.top_k);
    const int64_t E = cfg.num_experts;
    resize(counts_, E), resize(first_counts_, E), resize(offsets_, E), resize(dropped_, 1), resize(aux_, 1);
  }

  void forward(const T* x, T* y, int64_t batch, int64_t len) override;
  void backward(const T* dy, T* dx) override;
  void set_training(bool training) override { cfg_.router.training = training; }
  // Dropless reads the expert counts on the host each forward.
  bool capturable() const override { return !dropless(); }
  void expert_stats(std::vector<DeviceExpertStats>& out) const override {
    out.push_back({counts_.get(), dropped_.get(), aux_.get(), cfg_.num_experts});
  }

 private:
  static constexpr size_t kNone = size_t(-1);

  bool dropless() const { return cfg_.router.capacity_factor <= 0; }
  DeviceFfnWeights<T> experts() const {
    return {params_.compute(fc1_), params_.compute(fc2_), params_.grad(fc1_), params_.grad(fc2_)};
  }
  // The experts' forward (backward when dy is given) over the slots.
  void run_experts(const T* dy, T* dx);

  int64_t d_;
  MoeConfig cfg_;
  DeviceParams<T>& params_;
  const Context& ctx_;
  size_t router_w_, router_b_, fc1_, fc2_;

  // Last forward: input, router outputs, routing, slots and the experts' inputs, outputs and
  // activations; for dropless, the per-expert counts on the host.
  const T* x_ = nullptr;
  int64_t tokens_ = 0, slots_ = 0;
  DeviceBuffer<T> logits_, probs_, gates_, expert_in_, expert_out_;
  DeviceBuffer<int32_t> expert_, rank_, slot_, source_;
  DeviceBuffer<uint8_t> kept_;
  DeviceBuffer<int64_t> counts_, first_counts_, offsets_, dropped_;
  DeviceBuffer<double> aux_;
  DeviceRouting routing_;
  std::vector<int64_t> host_counts_;
  FfnBuffers<T> ffn_buffers_;
  FfnActivations<T> kept_acts_{};
};

template <typename T>
void MoeLayer<T>::forward(const T* x, T* y, int64_t batch, int64_t len) {
  const cudaStream_t s = ctx_.stream;
  const int64_t tokens = batch * len, E = cfg_.num_experts, k = cfg_.router.top_k, assignments = k * tokens;
  x_ = x;
  tokens_ = tokens;
  if (tokens <= 0) {  // nothing routed: zero statistics
    slots_ = 0;
    ML_CUDA_CHECK("moe", cudaMemsetAsync(counts_.get(), 0, counts_.bytes(), s));
    ML_CUDA_CHECK("moe", cudaMemsetAsync(dropped_.get(), 0, dropped_.bytes(), s));
    ML_CUDA_CHECK("moe", cudaMemsetAsync(aux_.get(), 0, aux_.bytes(), s));
    return;
  }
  resize(logits_, tokens * E), resize(probs_, tokens * E), resize(gates_, assignments);
  resize(expert_, assignments), resize(rank_, assignments), resize(slot_, assignments), resize(kept_, assignments);

  linear_forward<T>(x, params_.compute(router_w_), router_b_ == kNone ? nullptr : params_.master(router_b_),
                    logits_.get(), tokens, d_, E, s);
  routing_ = DeviceRouting{};
  routing_.expert = expert_.get(), routing_.kept = kept_.get(), routing_.rank = rank_.get();
  routing_.counts = counts_.get(), routing_.first_counts = first_counts_.get();
  routing_.dropped = dropped_.get(), routing_.aux_loss = aux_.get();
  route_forward<T>(cfg_.router, logits_.get(), tokens, E, probs_.get(), gates_.get(), routing_, s);

  const int64_t* offsets = nullptr;
  if (dropless()) {
    segment_offsets_kernel<<<1, 1, 0, s>>>(counts_.get(), int(E), offsets_.get());
    ML_CUDA_CHECK_LAUNCH("moe (segment offsets)");
    offsets = offsets_.get();
    slots_ = assignments + E * (kSegmentRows - 1);  // room for the largest padding
  } else {
    slots_ = E * routing_.capacity;
  }
  ML_CHECK(slots_ < int64_t(INT32_MAX), "moe (cuda): ", slots_, " expert rows exceed int32");
  resize(source_, slots_), resize(expert_in_, slots_ * d_), resize(expert_out_, slots_ * d_);
  ML_CUDA_CHECK("moe (slots)", cudaMemsetAsync(source_.get(), 0xff, size_t(slots_) * sizeof(int32_t), s));
  place_kernel<<<blocks_for(assignments, kThreads), kThreads, 0, s>>>(
      expert_.get(), kept_.get(), rank_.get(), offsets, routing_.capacity, assignments, slot_.get(), source_.get());
  ML_CUDA_CHECK_LAUNCH("moe (place)");
  gather_kernel<T><<<blocks_for(slots_ * d_, kThreads), kThreads, 0, s>>>(x, nullptr, source_.get(), slots_, tokens,
                                                                          d_, expert_in_.get());
  ML_CUDA_CHECK_LAUNCH("moe (gather)");
  kept_acts_ = ffn_buffers_.reserve(cfg_.expert, slots_);
  if (dropless()) {
    // The documented synchronisation (see the top of this file).
    host_counts_.resize(size_t(E));
    ML_CUDA_CHECK("moe (dropless counts)", cudaMemcpyAsync(host_counts_.data(), counts_.get(),
                                                           size_t(E) * sizeof(int64_t), cudaMemcpyDeviceToHost, s));
    ML_CUDA_CHECK("moe (dropless counts)", cudaStreamSynchronize(s));
  }
  run_experts(nullptr, nullptr);
  combine_kernel<T><<<blocks_for(tokens * d_, kThreads), kThreads, 0, s>>>(expert_out_.get(), gates_.get(),
                                                                            slot_.get(), tokens, int(k), d_, y);
  ML_CUDA_CHECK_LAUNCH("moe (combine)");
}

template <typename T>
void MoeLayer<T>::run_experts(const T* dy, T* dx) {
  const cudaStream_t s = ctx_.stream;
  const auto run = [&](const DeviceFfnWeights<T>& w, FfnBatch batch, int64_t row) {
    const T* in = expert_in_.get() + row * d_;
    const FfnActivations<T> acts = kept_acts_.from_row(row, cfg_.expert.hidden);
    if (dy) {
      ffn_backward<T>(cfg_.expert, d_, w, batch, in, acts, dy + row * d_, dx + row * d_, s);
    } else {
      ffn_forward<T>(cfg_.expert, d_, w, batch, in, expert_out_.get() + row * d_, acts, s);
    }
  };
  if (!dropless()) {
    run(experts(), {cfg_.num_experts, routing_.capacity}, 0);
    return;
  }
  int64_t row = 0;
  for (int64_t e = 0; e < cfg_.num_experts; ++e) {
    const int64_t rows = (host_counts_[e] + kSegmentRows - 1) / kSegmentRows * kSegmentRows;
    if (rows > 0) run(experts().group(e, cfg_.expert, d_), {1, rows}, row);
    row += rows;
  }
}

template <typename T>
void MoeLayer<T>::backward(const T* dy, T* dx) {
  ML_CHECK(x_ != nullptr, "moe (cuda): backward called before forward");
  const cudaStream_t s = ctx_.stream;
  const int64_t tokens = tokens_, E = cfg_.num_experts, k = cfg_.router.top_k, assignments = k * tokens;
  if (tokens <= 0) return;
  DeviceBuffer<T> dgates(assignments, "moe backward"), dlogits(tokens * E, "moe backward");
  DeviceBuffer<T> dslots(slots_ * d_, "moe backward"), dslots_in(slots_ * d_, "moe backward");
  const int64_t warp_blocks = (assignments + kWarpsPerBlock - 1) / kWarpsPerBlock;
  ML_CHECK(warp_blocks <= 0x7fffffff, "moe (cuda): ", assignments, " assignments exceed one launch");
  gate_grad_kernel<T><<<unsigned(warp_blocks), kThreads, 0, s>>>(dy, expert_out_.get(), slot_.get(), tokens,
                                                                 assignments, d_, dgates.get());
  ML_CUDA_CHECK_LAUNCH("moe (gate gradients)");
  gather_kernel<T><<<blocks_for(slots_ * d_, kThreads), kThreads, 0, s>>>(dy, gates_.get(), source_.get(), slots_,
                                                                          tokens, d_, dslots.get());
  ML_CUDA_CHECK_LAUNCH("moe (gather dy)");
  run_experts(dslots.get(), dslots_in.get());
  combine_kernel<T><<<blocks_for(tokens * d_, kThreads), kThreads, 0, s>>>(dslots_in.get(), nullptr, slot_.get(),
                                                                            tokens, int(k), d_, dx);
  ML_CUDA_CHECK_LAUNCH("moe (combine dx)");
  route_backward<T>(cfg_.router, probs_.get(), routing_, dgates.get(), dlogits.get(), s);
  linear_backward<T>(x_, params_.compute(router_w_), dlogits.get(), dx, params_.grad(router_w_),
                     router_b_ == kNone ? nullptr : params_.grad(router_b_), tokens, d_, E, true, s);
}

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_moe_layer(int64_t d_model, const MoeConfig& config, DeviceParams<T>& params,
                                         const std::string& prefix, const Context& context) {
  return std::make_unique<MoeLayer<T>>(d_model, config, params, prefix, context);
}

template std::unique_ptr<Layer<float>> make_moe_layer<float>(int64_t, const MoeConfig&, DeviceParams<float>&,
                                                             const std::string&, const Context&);
template std::unique_ptr<Layer<__nv_bfloat16>> make_moe_layer<__nv_bfloat16>(int64_t, const MoeConfig&,
                                                                             DeviceParams<__nv_bfloat16>&,
                                                                             const std::string&, const Context&);

}  // namespace ml::cuda
