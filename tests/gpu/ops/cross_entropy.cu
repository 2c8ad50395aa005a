#include "gpu/gpu_test.h"
#include "ops/cross_entropy/cross_entropy.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_ce(ml::cpu::HeadDims d, uint64_t seed) {
  ml::Rng rng(seed);
  std::vector<int32_t> targets(d.rows);
  for (auto& t : targets) t = int32_t(rng.next_u64() % uint64_t(d.vocab));
  targets[0] = int32_t(d.vocab - 1);
  const auto h = rounded<T>(uniform(rng, d.rows * d.dim, -2, 2)), E = rounded<T>(uniform(rng, d.vocab * d.dim));
  const auto dE0 = rounded<float>(uniform(rng, d.vocab * d.dim));
  std::vector<double> lse(d.rows), dh(d.rows * d.dim), dE = dE0;
  const double loss = ml::cpu::cross_entropy_forward<double>(d, h.data(), E.data(), targets.data(), lse.data());
  ml::cpu::cross_entropy_backward<double>(d, h.data(), E.data(), targets.data(), lse.data(), 1.0, dh.data(), dE.data());

  int32_t* gt = nullptr;
  check(cudaMalloc(&gt, targets.size() * sizeof(int32_t)), "cudaMalloc");
  check(cudaMemcpy(gt, targets.data(), targets.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "upload");
  Dev<T> gh(h), gE(E);
  Dev<float> glse(d.rows), gloss(1), gdh(d.rows * d.dim), gdE(dE0);
  glse.poison();
  gloss.poison();
  gdh.poison();
  ml::cuda::cross_entropy_forward<T>(d, gh.get(), gE.get(), gt, glse.get(), gloss.get(), nullptr);
  ml::cuda::cross_entropy_backward<T>(d, gh.get(), gE.get(), gt, glse.get(), 1.f, gdh.get(), gdE.get(), nullptr);
  sync("cross_entropy");
  cudaFree(gt);
  Errors errors(bound<T>());
  errors.add("loss", gloss.download(), {loss});
  errors.add("lse", glse.download(), lse);
  errors.add("dh", gdh.download(), dh);
  errors.add("dE", gdE.download(), dE);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_cross_entropy_fp32_matches_cpu) {
  // chunk 64 over 301 columns: several chunks and a ragged last one; then the default chunking.
  return check_ce<float>({45, 40, 301, 64}, 701) + "; " + check_ce<float>({1, 8, 9, 0}, 702) + "; " +
         check_ce<float>({512, 96, 5003, 0}, 703);
}
NATIVE_TEST(cuda_cross_entropy_bf16_matches_cpu) {
  return check_ce<bf16>({45, 40, 301, 64}, 711) + "; " + check_ce<bf16>({512, 96, 5003, 1000}, 712);
}
