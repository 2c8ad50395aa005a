#include "gpu/gpu_test.h"
#include "ops/argmax/argmax.h"

using namespace gputest;

namespace {

// Rows of a vocabulary's width (padded ld) with random values, one with its maximum tied at
// two places and one all equal: the same ids as the CPU.
std::string check_argmax(int64_t ld) {
  const int64_t rows = 5, n = 50277;
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
  return mltest::str("ld ", ld, ": ids ", got[0], " ", got[1], " ", got[2], " ", got[3], " ", got[4]);
}

}  // namespace

// Rows 16-byte aligned (read four values a load) and not (one at a time).
NATIVE_TEST(cuda_argmax_matches_cpu) { return check_argmax(50280) + "; " + check_argmax(50279); }
