#include "gpu/gpu_test.h"
#include "ops/argmax/argmax.h"

using namespace gputest;

// Rows of a vocabulary's width (padded ld) with random values, one with its maximum tied at
// two places and one all equal: the same ids as the CPU.
NATIVE_TEST(cuda_argmax_matches_cpu) {
  const int64_t rows = 5, n = 50277, ld = 50280;
  ml::Rng rng(1601);
  auto x = rounded<float>(uniform(rng, rows * ld, -8, 8));
  x[1 * ld + 40000] = 9, x[1 * ld + 123] = 9;  // tied: 123 wins
  for (int64_t i = 0; i < n; ++i) x[3 * ld + i] = 0.5;
  for (int64_t r = 0; r < rows; ++r) x[r * ld + n] = 100;  // padding, not read
  std::vector<int32_t> want(static_cast<size_t>(rows));
  ml::cpu::argmax<double>(x.data(), rows, n, ld, want.data());
  Dev<float> gx(x);
  Dev<int32_t> gout(rows);
  ml::cuda::argmax<float>(gx.get(), rows, n, ld, gout.get(), nullptr);
  sync("argmax");
  const auto got = download_raw(gout);
  for (int64_t r = 0; r < rows; ++r)
    if (got[size_t(r)] != want[size_t(r)])
      throw mltest::Failure(mltest::str("row ", r, ": got ", got[size_t(r)], ", want ", want[size_t(r)]));
  return mltest::str("ids ", got[0], " ", got[1], " ", got[2], " ", got[3], " ", got[4]);
}
