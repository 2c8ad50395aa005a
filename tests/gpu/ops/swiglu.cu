#include "gpu/gpu_test.h"
#include "ops/swiglu/swiglu.h"

using namespace gputest;

namespace {

// shift: the device arrays start that many elements into their allocations, so that runs of
// 8 are not 16-byte aligned (the element-by-element path of core/cuda_map.cuh).
template <typename T>
std::string check_swiglu(int64_t n, uint64_t seed, int64_t shift = 0) {
  ml::Rng rng(seed);
  const auto gate = rounded<T>(uniform(rng, n, -6, 6)), up = rounded<T>(uniform(rng, n, -2, 2)),
             dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dgate(n), dup(n);
  ml::cpu::swiglu_forward<double>(gate.data(), up.data(), y.data(), n);
  ml::cpu::swiglu_backward<double>(gate.data(), up.data(), dy.data(), dgate.data(), dup.data(), n);
  auto shifted = [shift](const std::vector<double>& v) {
    std::vector<double> out(size_t(shift), 0.0);
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  auto unshifted = [shift](const std::vector<double>& v) { return std::vector<double>(v.begin() + shift, v.end()); };
  Dev<T> ggate(shifted(gate)), gup(shifted(up)), gdy(shifted(dy)), gy(n + shift), gdgate(n + shift), gdup(n + shift);
  gy.poison();
  gdgate.poison();
  gdup.poison();
  ml::cuda::swiglu_forward<T>(ggate.get() + shift, gup.get() + shift, gy.get() + shift, n, nullptr);
  ml::cuda::swiglu_backward<T>(ggate.get() + shift, gup.get() + shift, gdy.get() + shift, gdgate.get() + shift,
                               gdup.get() + shift, n, nullptr);
  sync("swiglu");
  Errors errors(bound<T>());
  errors.add("y", unshifted(gy.download()), y);
  errors.add("dgate", unshifted(gdgate.download()), dgate);
  errors.add("dup", unshifted(gdup.download()), dup);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_swiglu_fp32_matches_cpu) { return check_swiglu<float>(100003, 221); }
NATIVE_TEST(cuda_swiglu_bf16_matches_cpu) { return check_swiglu<bf16>(1001, 222); }
NATIVE_TEST(cuda_swiglu_fp32_one_element) { return check_swiglu<float>(1, 223); }
NATIVE_TEST(cuda_swiglu_unaligned_views) {
  return check_swiglu<bf16>(1003, 224, 3) + "; " + check_swiglu<float>(517, 225, 1);
}
