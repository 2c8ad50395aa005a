#include "ops/gemm/gemm.h"

#include "../harness.h"

using namespace mltest;

namespace {

template <typename T>
double max_gemm_error(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double beta, ml::Rng& rng) {
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
  std::vector<T> A((ta ? K : M) * lda), B((tb ? N : K) * ldb), C(M * ldc);
  for (auto& v : A) v = T(rng.uniform(-1, 1));
  for (auto& v : B) v = T(rng.uniform(-1, 1));
  for (auto& v : C) v = T(rng.uniform(-1, 1));
  std::vector<T> expected = C;
  const double alpha = 0.75;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
      expected[i * ldc + j] = T(alpha * acc + (beta == 0 ? 0.0 : beta * double(C[i * ldc + j])));
    }
  if (beta == 0)  // beta = 0 must ignore NaNs already in C
    for (int64_t i = 0; i < M; ++i) C[i * ldc] = T(NAN);
  ml::cpu::gemm<T>(ta, tb, M, N, K, T(alpha), A.data(), lda, B.data(), ldb, T(beta), C.data(), ldc);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      worst = std::max(worst, std::abs(double(C[i * ldc + j]) - double(expected[i * ldc + j])) /
                                  (1.0 + std::abs(double(expected[i * ldc + j]))));
  return worst;
}

template <typename T>
std::string check_all_shapes(double bound) {
  ml::Rng rng(7);
  Worst worst("error vs naive product", bound);
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {97, 131, 263}, {6, 16, 256}, {200, 33, 517}, {5, 300, 1}};
  for (auto& s : sizes)
    for (int t = 0; t < 4; ++t)
      for (double beta : {0.0, 1.0, 0.5})
        worst.add(str("M", s[0], " N", s[1], " K", s[2], " ta", t & 1, " tb", t >> 1, " beta", beta),
                  max_gemm_error<T>(t & 1, t >> 1, s[0], s[1], s[2], beta, rng));
  return worst.report();
}

}  // namespace

NATIVE_TEST(gemm_float64_matches_naive_product) { return check_all_shapes<double>(1e-12); }
NATIVE_TEST(gemm_float32_matches_naive_product) { return check_all_shapes<float>(1e-5); }
