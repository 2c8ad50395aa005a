#include "memory.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace ml {
namespace {

constexpr double kGiB = double(int64_t{1} << 30);

// Kept and scratch bytes per token of one layer kind (see nn/*.h for what each keeps).
struct PerToken {
  double kept = 0, scratch = 0;
};

PerToken layer_bytes(char kind, const ModelConfig& c, int64_t len, double cb) {
  const double Di = double(c.mamba.d_inner()), N = double(c.mamba.d_state), R = double(c.mamba.rank());
  const double d = double(c.d_model);
  switch (kind) {
    case 'M': {
      // x, z, conv output, delta, y; dt, B, C; fp32 scan states every 64 steps.
      const double checkpoints = std::ceil(double(len) / 64.0) * Di * N * 4.0 / double(len);
      return {(5 * Di + R + 2 * N) * cb + checkpoints, (5 * Di + R + 2 * N) * cb};
    }
    case 'E': {
      const double k = double(c.moe.router.top_k), padding = std::max(c.moe.router.capacity_factor, 1.0);
      const double per_assignment = (2 * d + double(c.moe.expert.fc1_rows()) + double(c.moe.expert.hidden)) * cb;
      return {k * padding * per_assignment + 2 * double(c.moe.num_experts) * cb, k * padding * per_assignment};
    }
    case 'F': {
      const double ffn = (double(c.mlp.fc1_rows()) + double(c.mlp.hidden)) * cb;
      return {ffn, ffn + d * cb};
    }
    default:
      return {};
  }
}

}  // namespace

double weight_bytes(int64_t param_count, int64_t compute_bytes) {
  return double(param_count) * (16.0 + (compute_bytes == 4 ? 0.0 : double(compute_bytes)));
}

MemoryEstimate estimate_training_memory(const ModelConfig& c, int64_t param_count, int64_t batch, int64_t len,
                                        int64_t compute_bytes) {
  const double cb = double(compute_bytes), tokens = double(batch) * double(len), d = double(c.d_model);
  MemoryEstimate e;
  e.weights = weight_bytes(param_count, compute_bytes);
  double largest_scratch = 0;
  for (const LayerSpec& spec : c.layers) {
    // Every layer keeps its norm's fp32 residual, T output and statistics.
    double kept = d * 4 + d * cb + 4, scratch = 0;
    for (const char kind : spec) {
      const PerToken b = layer_bytes(kind, c, len, cb);
      kept += b.kept, scratch += b.scratch;
    }
    e.activations += kept * tokens;
    largest_scratch = std::max(largest_scratch, scratch * tokens);
  }
  e.activations += (d * 4 + d * cb + (c.final_norm == NormKind::LayerNorm ? 8 : 4)) * tokens;  // norm_f (+ its means)
  // The backward's residual-stream gradients (two fp32, one T) and the head's chunk of fp32
  // logits with its T softmax gradient (~128M logits a chunk, nn/cuda_backend.h).
  const double head = double(int64_t{1} << 27) * (4 + cb);
  e.transient = largest_scratch + (2 * 4 + 2 * cb) * d * tokens + head;
  return e;
}

std::string describe(const MemoryEstimate& e) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << e.total() / kGiB << " GiB (weights and optimizer " << e.weights / kGiB
      << ", activations " << e.activations / kGiB << ", scratch " << e.transient / kGiB << ")";
  return out.str();
}

}  // namespace ml
