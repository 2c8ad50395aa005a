#include "gpu/gpu_test.h"
#include "ops/conv1d/conv1d.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_conv(ml::cpu::Conv1dDims d, bool silu, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = d.batch * d.len * d.dim;
  const auto x = rounded<T>(uniform(rng, n)), w = rounded<float>(uniform(rng, d.dim * d.width));
  const auto bias = rounded<float>(uniform(rng, d.dim)), dy = rounded<T>(uniform(rng, n));
  const auto dw0 = rounded<float>(uniform(rng, d.dim * d.width)), db0 = rounded<float>(uniform(rng, d.dim));
  std::vector<double> y(n), dx(n), dw = dw0, db = db0;
  ml::cpu::conv1d_forward<double>(d, x.data(), w.data(), bias.data(), y.data(), silu);
  ml::cpu::conv1d_backward<double>(d, x.data(), w.data(), bias.data(), dy.data(), dx.data(), dw.data(), db.data(), silu);

  Dev<T> gx(x), gy(n), gdy(dy), gdx(n);
  Dev<float> gw(w), gbias(bias), gdw(dw0), gdb(db0);
  gy.poison();
  gdx.poison();
  ml::cuda::conv1d_forward<T>(d, gx.get(), gw.get(), gbias.get(), gy.get(), silu, nullptr);
  ml::cuda::conv1d_backward<T>(d, gx.get(), gw.get(), gbias.get(), gdy.get(), gdx.get(), gdw.get(), gdb.get(), silu,
                               nullptr);
  sync("conv1d");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dx", gdx.download(), dx);
  errors.add("dweight", gdw.download(), dw);
  errors.add("dbias", gdb.download(), db);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_conv1d_fp32_matches_cpu) {
  return check_conv<float>({2, 150, 70, 4}, true, 601) + "; " + check_conv<float>({1, 1, 5, 4}, true, 602) + "; " +
         check_conv<float>({3, 65, 130, 3}, false, 603) + "; " + check_conv<float>({2, 64, 129, 2}, true, 604);
}
NATIVE_TEST(cuda_conv1d_bf16_matches_cpu) {
  return check_conv<bf16>({2, 150, 70, 4}, true, 611) + "; " + check_conv<bf16>({1, 3, 1536, 4}, true, 612);
}
// Channels past one block's 128 threads × 8 (ragged: a thread with 6 of its 8, rows that
// break 16-byte alignment), runs that end mid-batch of loads, every width.
NATIVE_TEST(cuda_conv1d_wide_ragged_matches_cpu) {
  return check_conv<bf16>({2, 200, 1032, 4}, true, 621) + "; " + check_conv<bf16>({1, 70, 1030, 3}, false, 622) +
         "; " + check_conv<bf16>({2, 67, 2056, 2}, true, 623) + "; " + check_conv<bf16>({1, 9, 24, 1}, true, 624) +
         "; " + check_conv<float>({2, 130, 1030, 4}, true, 625) + "; " +
         check_conv<float>({1, 131, 516, 1}, false, 626);
}
