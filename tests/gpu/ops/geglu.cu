#include "gpu/gpu_test.h"
#include "ops/geglu/geglu.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_geglu(int64_t n, uint64_t seed) {
  ml::Rng rng(seed);
  const auto gate = rounded<T>(uniform(rng, n, -6, 6)), up = rounded<T>(uniform(rng, n, -2, 2)),
             dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dgate(n), dup(n);
  ml::cpu::geglu_forward<double>(gate.data(), up.data(), y.data(), n);
  ml::cpu::geglu_backward<double>(gate.data(), up.data(), dy.data(), dgate.data(), dup.data(), n);
  Dev<T> ggate(gate), gup(up), gdy(dy), gy(n), gdgate(n), gdup(n);
  gy.poison();
  gdgate.poison();
  gdup.poison();
  ml::cuda::geglu_forward<T>(ggate.get(), gup.get(), gy.get(), n, nullptr);
  ml::cuda::geglu_backward<T>(ggate.get(), gup.get(), gdy.get(), gdgate.get(), gdup.get(), n, nullptr);
  sync("geglu");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dgate", gdgate.download(), dgate);
  errors.add("dup", gdup.download(), dup);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_geglu_fp32_matches_cpu) { return check_geglu<float>(100003, 231); }
NATIVE_TEST(cuda_geglu_bf16_matches_cpu) { return check_geglu<bf16>(1001, 232); }
NATIVE_TEST(cuda_geglu_fp32_one_element) { return check_geglu<float>(1, 233); }
