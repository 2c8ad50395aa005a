// gemm: general matrix product, the work horse of linear layers and the LM head.
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C,   op(X) = X or Xᵀ.
// Row-major with leading dimensions lda/ldb/ldc. beta == 0 overwrites C (NaNs in C ignored).
#pragma once
#include <cstdint>

namespace ml::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same product on device pointers through cuBLASLt (with at most 4 rows against Bᵀ: a
// matrix–vector kernel that reads B once), enqueued on `stream`. A and B hold
// TIn (float or __nv_bfloat16), C holds TOut; products accumulate in fp32 (never TF32) and
// alpha, beta are fp32. Instantiated for <float, float>, <bf16, bf16> and <bf16, float>
// (bf16 operands with an fp32 result: the weight gradients of mixed-precision training).
// b_is_weight: B is a layer's weights, written before the kernel that precedes this product in
// the stream and never by it, so the matrix–vector kernel may read B before that kernel ends.
template <typename TIn, typename TOut>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const TIn* A, int64_t lda,
          const TIn* B, int64_t ldb, float beta, TOut* C, int64_t ldc, cudaStream_t stream, bool b_is_weight = false);

// `batch` independent products of one shape in one call (the experts of a mixture of
// experts): product i reads A + i·stride_a, B + i·stride_b and writes C + i·stride_c
// (strides in elements, each at least the size of its matrix).
template <typename TIn, typename TOut>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const TIn* A,
                          int64_t lda, int64_t stride_a, const TIn* B, int64_t ldb, int64_t stride_b, float beta,
                          TOut* C, int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream,
                          bool b_is_weight = false);

}  // namespace ml::cuda
