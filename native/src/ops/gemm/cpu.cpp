// Packed, cache-blocked GEMM with a register-tiled micro-kernel (the BLIS scheme):
// C is cut into MC×NC tiles, one per task; each task packs MR-row slivers of A and
// NR-column slivers of B for a KC-deep slab and runs an MR×NR kernel whose accumulators
// stay in vector registers. GCC vector extensions give AVX2/AVX-512 code under -march.
#include <algorithm>
#include <vector>

#include "../../core/parallel.h"
#include "gemm.h"

namespace ml::cpu {
namespace {

constexpr int64_t kVecBytes = 32;
constexpr int64_t MR = 6;
constexpr int64_t MC = 96;   // multiple of MR
constexpr int64_t KC = 256;
constexpr int64_t NC = 256;  // multiple of NR

template <typename T>
struct Kernel {
  static constexpr int64_t W = kVecBytes / sizeof(T);
  static constexpr int64_t NR = 2 * W;
  typedef T Vec __attribute__((vector_size(kVecBytes)));

  // acc[MR][NR] = Σ_k a[k][r] · b[k][c] over packed slivers.
  static void run(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict acc) {
    Vec c[MR][2] = {};
    for (int64_t k = 0; k < kc; ++k) {
      Vec b0, b1;
      __builtin_memcpy(&b0, b, sizeof(Vec));
      __builtin_memcpy(&b1, b + W, sizeof(Vec));
      for (int64_t r = 0; r < MR; ++r) {
        const T ar = a[r];
        c[r][0] += ar * b0;
        c[r][1] += ar * b1;
      }
      a += MR;
      b += NR;
    }
    for (int64_t r = 0; r < MR; ++r) {
      __builtin_memcpy(acc + r * NR, &c[r][0], sizeof(Vec));
      __builtin_memcpy(acc + r * NR + W, &c[r][1], sizeof(Vec));
    }
  }
};

template <typename T>
struct Operand {
  const T* p;
  int64_t ld;
  bool trans;
  T at(int64_t row, int64_t col) const { return trans ? p[col * ld + row] : p[row * ld + col]; }
};

// Packs rows [i0, i0+mc) × depth [k0, k0+kc) of op(A) into MR-row slivers, zero padded.
template <typename T>
void pack_a(const Operand<T>& A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* out) {
  for (int64_t s = 0; s < mc; s += MR) {
    const int64_t rows = std::min(MR, mc - s);
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < MR; ++r) *out++ = r < rows ? A.at(i0 + s + r, k0 + k) : T(0);
  }
}

// Packs depth [k0, k0+kc) × columns [j0, j0+nc) of op(B) into NR-column slivers, zero padded.
template <typename T>
void pack_b(const Operand<T>& B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* out) {
  constexpr int64_t NR = Kernel<T>::NR;
  for (int64_t s = 0; s < nc; s += NR) {
    const int64_t cols = std::min(NR, nc - s);
    for (int64_t k = 0; k < kc; ++k) {
      if (!B.trans && cols == NR) {
        std::copy_n(B.p + (k0 + k) * B.ld + j0 + s, NR, out);
        out += NR;
        continue;
      }
      for (int64_t c = 0; c < NR; ++c) *out++ = c < cols ? B.at(k0 + k, j0 + s + c) : T(0);
    }
  }
}

template <typename T>
void gemm_tile(const Operand<T>& A, const Operand<T>& B, int64_t K, T alpha, T beta, T* C, int64_t ldc, int64_t i0,
               int64_t mc, int64_t j0, int64_t nc) {
  constexpr int64_t NR = Kernel<T>::NR;
  thread_local std::vector<T> a_pack, b_pack;
  a_pack.resize(MC * KC);
  b_pack.resize(KC * (NC + NR));
  alignas(64) T acc[MR * NR];

  for (int64_t i = 0; i < mc; ++i) {
    T* row = C + (i0 + i) * ldc + j0;
    if (beta == T(0))
      std::fill_n(row, nc, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < nc; ++j) row[j] *= beta;
  }
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    pack_a(A, i0, mc, k0, kc, a_pack.data());
    pack_b(B, k0, kc, j0, nc, b_pack.data());
    for (int64_t js = 0; js < nc; js += NR) {
      const int64_t cols = std::min(NR, nc - js);
      for (int64_t is = 0; is < mc; is += MR) {
        const int64_t rows = std::min(MR, mc - is);
        Kernel<T>::run(kc, a_pack.data() + is * kc, b_pack.data() + js * kc, acc);
        for (int64_t r = 0; r < rows; ++r) {
          T* out = C + (i0 + is + r) * ldc + j0 + js;
          const T* in = acc + r * NR;
          for (int64_t c = 0; c < cols; ++c) out[c] += alpha * in[c];
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const Operand<T> a{A, lda, trans_a}, b{B, ldb, trans_b};
  const int64_t tiles_m = (M + MC - 1) / MC, tiles_n = (N + NC - 1) / NC;
  parallel_for(tiles_m * tiles_n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i0 = (t / tiles_n) * MC, j0 = (t % tiles_n) * NC;
      gemm_tile(a, b, K, alpha, beta, C, ldc, i0, std::min(MC, M - i0), j0, std::min(NC, N - j0));
    }
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace ml::cpu
