#include "gpu/gpu_test.h"
#include "ops/silu/silu.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_silu(int64_t n, uint64_t seed) {
  ml::Rng rng(seed);
  const auto x = rounded<T>(uniform(rng, n, -6, 6)), dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dx(n);
  ml::cpu::silu_forward<double>(x.data(), y.data(), n);
  ml::cpu::silu_backward<double>(x.data(), dy.data(), dx.data(), n);
  Dev<T> gx(x), gdy(dy), gy(n), gdx(n);
  gy.poison();
  gdx.poison();
  ml::cuda::silu_forward<T>(gx.get(), gy.get(), n, nullptr);
  ml::cuda::silu_backward<T>(gx.get(), gdy.get(), gdx.get(), n, nullptr);
  sync("silu");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dx", gdx.download(), dx);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_silu_fp32_matches_cpu) { return check_silu<float>(100003, 201); }
NATIVE_TEST(cuda_silu_bf16_matches_cpu) { return check_silu<bf16>(1001, 202); }
