// Multi-tensor AdamW: one block per 16K-element chunk of a tensor, each thread updating
// elements strided by the block size (coalesced). Constants that depend only on the step
// are computed once on the host, in double, as the CPU reference does.
#include <cmath>

#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/multi_tensor.cuh"
#include "adamw.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;

struct StepConstants {
  float beta1, beta2, eps, step_size, bc2_sqrt;
};

struct Entry {
  float* param;
  const float* grad;
  float* m;
  float* v;
  bf16* param_bf16;
  int64_t size;
  float decay;  // 1 − lr·weight_decay
};

__global__ void adamw_kernel(const __grid_constant__ TensorBatch<Entry> batch, StepConstants k,
                             const float* __restrict__ grad_scale) {
  const int64_t block = blockIdx.x;
  const Entry& e = batch.entries[entry_of(batch, block)];
  const int64_t begin = (block - batch.first_block[entry_of(batch, block)]) * kChunk;
  const int64_t end = min(e.size, begin + kChunk);
  const float scale = grad_scale ? *grad_scale : 1.f;
  if (!isfinite(scale)) return;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float g = e.grad[i] * scale;
    const float m = k.beta1 * e.m[i] + (1.f - k.beta1) * g;
    const float v = k.beta2 * e.v[i] + (1.f - k.beta2) * g * g;
    const float p = e.param[i] * e.decay - k.step_size * m / (sqrtf(v) / k.bc2_sqrt + k.eps);
    e.m[i] = m;
    e.v[i] = v;
    e.param[i] = p;
    if (e.param_bf16) e.param_bf16[i] = __float2bfloat16_rn(p);
  }
}

}  // namespace

void adamw_update(const AdamWParams& o, const std::vector<AdamWTensor>& tensors, const float* grad_scale,
                  cudaStream_t stream) {
  ML_CHECK(o.step >= 1, "adamw_update: step counts from 1, got ", o.step);
  const StepConstants k{float(o.beta1), float(o.beta2), float(o.eps),
                        float(o.lr / (1.0 - std::pow(o.beta1, double(o.step)))),
                        float(std::sqrt(1.0 - std::pow(o.beta2, double(o.step))))};
  std::vector<Entry> entries;
  entries.reserve(tensors.size());
  for (const AdamWTensor& t : tensors)
    entries.push_back({t.param, t.grad, t.m, t.v, t.param_bf16, t.size,
                       float(1.0 - o.lr * double(t.weight_decay))});
  for (const auto& batch : make_batches(entries, kChunk, [](const Entry& e) { return e.size; })) {
    adamw_kernel<<<unsigned(batch.blocks()), kThreads, 0, stream>>>(batch, k, grad_scale);
    ML_CUDA_CHECK_LAUNCH("adamw_update");
  }
}

void adamw_update(const AdamWParams& o, float* param, const float* grad, float* m, float* v, int64_t n,
                  cudaStream_t stream) {
  adamw_update(o, {AdamWTensor{param, grad, m, v, n, float(o.weight_decay)}}, nullptr, stream);
}

}  // namespace ml::cuda
