#include "gpu/gpu_test.h"
#include "ops/gemm/gemm.h"

using namespace gputest;

namespace {

// C = alpha·op(A)·op(B) + beta·C on padded leading dimensions; beta = 0 starts from a
// poisoned C (it must not be read).
template <typename TIn, typename TOut>
std::string check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double beta, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = beta == 0 ? N : N + 2;
  const auto A = rounded<TIn>(uniform(rng, (ta ? K : M) * lda)), B = rounded<TIn>(uniform(rng, (tb ? N : K) * ldb));
  const auto C0 = rounded<TOut>(uniform(rng, M * ldc));
  const double alpha = 0.75;
  auto want = C0;
  ml::cpu::gemm<double>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);

  Dev<TIn> a(A), b(B);
  Dev<TOut> c(C0);
  if (beta == 0) c.poison();
  ml::cuda::gemm<TIn, TOut>(ta, tb, M, N, K, float(alpha), a.get(), lda, b.get(), ldb, float(beta), c.get(), ldc,
                            nullptr);
  sync("gemm");
  Errors errors(bound<TOut>());
  errors.add(mltest::str("C(ta=", ta, ",tb=", tb, ")"), c.download(), want);
  return errors.report();
}

template <typename TIn, typename TOut>
std::string check_all(uint64_t seed) {
  std::string out;
  for (int t = 0; t < 4; ++t) out += check_gemm<TIn, TOut>(t & 1, t & 2, 37, 53, 29, t % 2 ? 0.0 : 0.5, seed + t) + "; ";
  return out + check_gemm<TIn, TOut>(false, true, 256, 320, 192, 1.0, seed + 9);
}

}  // namespace

NATIVE_TEST(cuda_gemm_fp32_matches_cpu) { return check_all<float, float>(101); }
NATIVE_TEST(cuda_gemm_bf16_matches_cpu) { return check_all<bf16, bf16>(111); }
NATIVE_TEST(cuda_gemm_bf16_in_fp32_out_matches_cpu) { return check_all<bf16, float>(121); }
