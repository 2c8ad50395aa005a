// geglu: the gated unit of GELU-gated experts (BlackMamba's released code: its MLP's
// activation is F.gelu on the gate half), on the two up-projections.
//   forward:  y = gelu(gate) · up                                  gate, up, y (n)
//   backward: dgate = dy · up · gelu'(gate);  dup = dy · gelu(gate)  (both overwritten)
// gelu is the exact (erf) one of ops/gelu.
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void geglu_forward(const T* gate, const T* up, T* y, int64_t n);

template <typename T>
void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (fp32 math).
template <typename T>
void geglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream);

template <typename T>
void geglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n, cudaStream_t stream);

}  // namespace ml::cuda
