#include "gpu/gpu_test.h"
#include "ops/a_log/a_log.h"

using namespace gputest;

namespace {

// A = −exp(A_log) and the accumulating backward, fp32 on the device against the fp64 CPU.
std::string check_a_log(int64_t n, uint64_t seed) {
  ml::Rng rng(seed);
  const auto a_log = rounded<float>(uniform(rng, n, -3, 4)), dA = rounded<float>(uniform(rng, n));
  const auto da0 = rounded<float>(uniform(rng, n));
  std::vector<double> A(n), da_log = da0;
  ml::cpu::a_log_forward<double>(a_log.data(), A.data(), n);
  ml::cpu::a_log_backward<double>(A.data(), dA.data(), da_log.data(), n);
  Dev<float> ga_log(a_log), gA(n), gdA(dA), gda(da0);
  gA.poison();
  ml::cuda::a_log_forward(ga_log.get(), gA.get(), n, nullptr);
  ml::cuda::a_log_backward(gA.get(), gdA.get(), gda.get(), n, nullptr);
  sync("a_log");
  Errors errors(bound<float>());
  errors.add("A", gA.download(), A);
  errors.add("dA_log", gda.download(), da_log);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_a_log_matches_cpu) { return check_a_log(100003, 311); }
NATIVE_TEST(cuda_a_log_one_element) { return check_a_log(1, 312); }
