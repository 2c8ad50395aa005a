#include "gpu/gpu_test.h"
#include "ops/add/add.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_add(int64_t n, uint64_t seed) {
  ml::Rng rng(seed);
  const auto x = rounded<T>(uniform(rng, n)), y0 = rounded<T>(uniform(rng, n));
  auto want = y0;
  ml::cpu::add_into<double>(x.data(), want.data(), n);
  Dev<T> gx(x), gy(y0);
  ml::cuda::add_into<T>(gx.get(), gy.get(), n, nullptr);
  sync("add_into");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), want);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_add_fp32_matches_cpu) { return check_add<float>(100003, 301); }
NATIVE_TEST(cuda_add_bf16_matches_cpu) { return check_add<bf16>(100003, 302); }
