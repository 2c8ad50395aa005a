// add: y += x elementwise (the sum of a parallel group's branches).
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void add_into(const T* x, T* y, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (fp32 sum,
// one rounding to T).
template <typename T>
void add_into(const T* x, T* y, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
