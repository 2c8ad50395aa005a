#include "gpu/gpu_test.h"
#include "ops/linear/linear.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_linear(int64_t rows, int64_t in, int64_t out, bool with_bias, bool accumulate_dx, uint64_t seed) {
  ml::Rng rng(seed);
  const auto x = rounded<T>(uniform(rng, rows * in)), w = rounded<T>(uniform(rng, out * in));
  const auto bias = rounded<float>(uniform(rng, out)), dy = rounded<T>(uniform(rng, rows * out));
  const auto dx0 = rounded<T>(uniform(rng, rows * in)), dw0 = rounded<float>(uniform(rng, out * in));
  const auto db0 = rounded<float>(uniform(rng, out));
  std::vector<double> y(rows * out), dx = dx0, dw = dw0, db = db0;
  ml::cpu::linear_forward<double>(x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(), rows, in, out);
  ml::cpu::linear_backward<double>(x.data(), w.data(), dy.data(), dx.data(), dw.data(), with_bias ? db.data() : nullptr,
                                   rows, in, out, accumulate_dx);

  Dev<T> gx(x), gw(w), gy(rows * out), gdy(dy), gdx(dx0);
  Dev<float> gbias(bias), gdw(dw0), gdb(db0);
  gy.poison();
  if (!accumulate_dx) gdx.poison();
  ml::cuda::linear_forward<T>(gx.get(), gw.get(), with_bias ? gbias.get() : nullptr, gy.get(), rows, in, out, nullptr);
  ml::cuda::linear_backward<T>(gx.get(), gw.get(), gdy.get(), gdx.get(), gdw.get(), with_bias ? gdb.get() : nullptr,
                               rows, in, out, accumulate_dx, nullptr);
  sync("linear");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dx", gdx.download(), dx);
  errors.add("dweight", gdw.download(), dw);
  if (with_bias) errors.add("dbias", gdb.download(), db);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_linear_fp32_matches_cpu) {
  return check_linear<float>(75, 40, 24, true, false, 501) + "; " + check_linear<float>(1, 7, 3, false, true, 502) +
         "; " + check_linear<float>(600, 96, 130, true, true, 503);
}
NATIVE_TEST(cuda_linear_bf16_matches_cpu) {
  return check_linear<bf16>(75, 40, 24, true, false, 511) + "; " + check_linear<bf16>(600, 96, 130, true, true, 512);
}
