// cast: element type conversion, y[i] = From→To(x[i]), rounding to nearest even. Mixed
// precision moves between fp32 (master weights, the residual stream's gradient) and the
// compute type.
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename From, typename To>
void cast(const From* x, To* y, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// On device pointers, enqueued on `stream`: float ↔ __nv_bfloat16, and float → float (a copy).
template <typename From, typename To>
void cast(const From* x, To* y, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
