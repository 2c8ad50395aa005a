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
