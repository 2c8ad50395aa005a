// An estimate of the device memory one training step needs, for out-of-memory errors that
// say what a config asks for (and for users sizing a run before they start it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/bytes.h"
#include "../nn/config.h"

namespace ml {

struct MemoryEstimate {
  double weights = 0;      // fp32 master weights, gradients, two AdamW moments, compute copy
  double activations = 0;  // what the forward keeps for the backward
  double transient = 0;    // the largest backward's scratch and the LM head's logit chunks
  double total() const { return weights + activations + transient; }
};

// Bytes of fp32 master weights, gradients and two AdamW moments, plus the compute copy when
// compute_bytes (2 for bf16 compute, 4 for fp32) is narrower than fp32.
double weight_bytes(int64_t param_count, int64_t compute_bytes);

// compute_bytes: 2 for bf16 compute, 4 for fp32.
MemoryEstimate estimate_training_memory(const ModelConfig& config, int64_t param_count, int64_t batch, int64_t len,
                                        int64_t compute_bytes);

// "12.3 GiB (weights and optimizer 1.2, activations 9.8, scratch 1.3)"
std::string describe(const MemoryEstimate& estimate);

}  // namespace ml
