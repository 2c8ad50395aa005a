#include "core/chained_launch.cuh"
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
  out += check_gemm<TIn, TOut>(false, true, 256, 320, 192, 1.0, seed + 9) + "; ";
  // At most 4 rows against Bᵀ: the matrix–vector kernel, ragged and aligned sizes, beta 0 and not.
  for (int64_t M = 1; M <= 4; ++M) out += check_gemm<TIn, TOut>(false, true, M, 301, 77 + 64 * M, M % 2 ? 0.0 : 0.5, seed + 20 + M) + "; ";
  // Warps per column 1, 2, 4 and 8 (split K added in a fixed order), long and ragged K.
  out += check_gemm<TIn, TOut>(false, true, 1, 5000, 2048, 0.0, seed + 31) + "; ";
  out += check_gemm<TIn, TOut>(false, true, 2, 1500, 4099, 0.5, seed + 32) + "; ";
  out += check_gemm<TIn, TOut>(false, true, 1, 160, 4096, 0.0, seed + 33) + "; ";
  return out + check_gemm<TIn, TOut>(false, true, 1, 3072, 768, 0.0, seed + 30);
}

// A strided batch of `batch` products with gaps between the members (strides above the
// matrix sizes): each member against the CPU product of its own slices; the gaps of C stay
// as they were.
template <typename TIn, typename TOut>
std::string check_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t batch, double beta,
                          uint64_t seed, bool shared_a = false) {
  ml::Rng rng(seed);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
  const int64_t stride_a = shared_a ? 0 : (ta ? K : M) * lda + 8, stride_b = (tb ? N : K) * ldb + 16, stride_c = M * ldc + 24;
  const auto A = rounded<TIn>(uniform(rng, shared_a ? (ta ? K : M) * lda : batch * stride_a)), B = rounded<TIn>(uniform(rng, batch * stride_b));
  const auto C0 = rounded<TOut>(uniform(rng, batch * stride_c));
  auto want = C0;
  for (int64_t i = 0; i < batch; ++i)
    ml::cpu::gemm<double>(ta, tb, M, N, K, 1.0, A.data() + i * stride_a, lda, B.data() + i * stride_b, ldb, beta,
                          want.data() + i * stride_c, ldc);
  Dev<TIn> a(A), b(B);
  Dev<TOut> c(C0);
  ml::cuda::gemm_strided_batched<TIn, TOut>(ta, tb, M, N, K, 1.f, a.get(), lda, stride_a, b.get(), ldb, stride_b,
                                            float(beta), c.get(), ldc, stride_c, batch, nullptr);
  sync("gemm_strided_batched");
  Errors errors(bound<TOut>());
  errors.add(mltest::str("C(ta=", ta, ",tb=", tb, ",batch=", batch, shared_a ? ",A shared" : "", ")"), c.download(), want);
  return errors.report();
}

template <typename TIn, typename TOut>
std::string check_all_batched(uint64_t seed) {
  std::string out;
  for (int t = 0; t < 4; ++t) out += check_batched<TIn, TOut>(t & 1, t & 2, 33, 40, 24, 5, t % 2, seed + t) + "; ";
  out += check_batched<TIn, TOut>(false, true, 3, 50, 40, 6, 0.5, seed + 11) + "; ";  // the matrix–vector kernel
  // One A for every member (stride 0: a decode step's in_proj halves), GEMV and cuBLASLt.
  out += check_batched<TIn, TOut>(false, true, 2, 64, 48, 2, 0.0, seed + 12, true) + "; ";
  out += check_batched<TIn, TOut>(false, true, 40, 64, 48, 2, 0.0, seed + 13, true) + "; ";
  return out + check_batched<TIn, TOut>(false, true, 128, 96, 64, 32, 0.0, seed + 9);
}

}  // namespace

NATIVE_TEST(cuda_gemm_batched_fp32_matches_cpu) { return check_all_batched<float, float>(131); }
NATIVE_TEST(cuda_gemm_batched_bf16_matches_cpu) { return check_all_batched<bf16, bf16>(141); }
NATIVE_TEST(cuda_gemm_batched_bf16_in_fp32_out_matches_cpu) { return check_all_batched<bf16, float>(151); }
NATIVE_TEST(cuda_gemm_fp32_matches_cpu) { return check_all<float, float>(101); }
NATIVE_TEST(cuda_gemm_bf16_matches_cpu) { return check_all<bf16, bf16>(111); }
NATIVE_TEST(cuda_gemm_bf16_in_fp32_out_matches_cpu) { return check_all<bf16, float>(121); }

namespace {

// The matrix–vector product told B is weights (it reads B before the kernel before it ends):
// right after a kernel that writes A late, its C must be that of the final A, bit for bit the
// product not told so.
std::string check_weights_first(int64_t M, int64_t N, int64_t K, uint64_t seed) {
  ml::Rng rng(seed);
  const auto A = uniform(rng, M * K), B = uniform(rng, N * K);
  Dev<float> a_final(A), a(M * K), b(B), c_plain(M * N), c_first(M * N);
  a.poison();
  ml::cuda::gemm<float, float>(false, true, M, N, K, 1.f, a_final.get(), K, b.get(), K, 0.f, c_plain.get(), N, nullptr);
  ml::cuda::launch_chained("copy_late", copy_late<float>, dim3(64), dim3(256), 0, nullptr, a_final.get(), a.get(), M * K);
  ml::cuda::gemm<float, float>(false, true, M, N, K, 1.f, a.get(), K, b.get(), K, 0.f, c_first.get(), N, nullptr,
                               /*b_is_weight=*/true);
  sync("gemm (weights first)");
  const auto plain = c_plain.download(), first = c_first.download();
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT(plain[i] == first[i], "M=", M, " N=", N, " K=", K, ": C[", i, "] ", first[i], " vs ", plain[i],
           " (read A before the kernel writing it had finished?)");
  return mltest::str(M, "x", N, "x", K);
}

}  // namespace

NATIVE_TEST(cuda_gemv_reading_weights_first_waits_for_its_input) {
  // Warps per column 8, 4, 2 and 1; K shorter than, equal to and longer than one tile of loads.
  return check_weights_first(1, 700, 768, 161) + ", " + check_weights_first(2, 1500, 4099, 162) + ", " +
         check_weights_first(4, 3000, 1024, 163) + ", " + check_weights_first(1, 8192, 2048, 164) +
         ": bit-identical to the product not told B is weights";
}
