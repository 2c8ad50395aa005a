#include "gpu/gpu_test.h"
#include "ops/swiglu/swiglu.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_swiglu(int64_t n, uint64_t seed) {
  ml::Rng rng(seed);
  const auto gate = rounded<T>(uniform(rng, n, -6, 6)), up = rounded<T>(uniform(rng, n, -2, 2)),
             dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dgate(n), dup(n);
  ml::cpu::swiglu_forward<double>(gate.data(), up.data(), y.data(), n);
  ml::cpu::swiglu_backward<double>(gate.data(), up.data(), dy.data(), dgate.data(), dup.data(), n);
  Dev<T> ggate(gate), gup(up), gdy(dy), gy(n), gdgate(n), gdup(n);
  gy.poison();
  gdgate.poison();
  gdup.poison();
  ml::cuda::swiglu_forward<T>(ggate.get(), gup.get(), gy.get(), n, nullptr);
  ml::cuda::swiglu_backward<T>(ggate.get(), gup.get(), gdy.get(), gdgate.get(), gdup.get(), n, nullptr);
  sync("swiglu");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dgate", gdgate.download(), dgate);
  errors.add("dup", gdup.download(), dup);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_swiglu_fp32_matches_cpu) { return check_swiglu<float>(100003, 221); }
NATIVE_TEST(cuda_swiglu_bf16_matches_cpu) { return check_swiglu<bf16>(1001, 222); }
NATIVE_TEST(cuda_swiglu_fp32_one_element) { return check_swiglu<float>(1, 223); }
