// a_log: Mamba's state matrix from its stored logarithm, A = −exp(A_log), which keeps A
// negative (a stable recurrence) whatever the optimizer does to A_log.
//   forward:  A = −exp(A_log)
//   backward: dA_log += dA ⊙ A         (dA/dA_log = A; accumulates)
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void a_log_forward(const T* a_log, T* A, int64_t n);

template <typename T>
void a_log_backward(const T* A, const T* dA, T* da_log, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on fp32 device pointers (A_log and A are parameters: fp32), enqueued on `stream`.
void a_log_forward(const float* a_log, float* A, int64_t n, cudaStream_t stream);
void a_log_backward(const float* A, const float* dA, float* da_log, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
