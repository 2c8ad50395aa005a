#include "gpu/gpu_test.h"
#include "ops/selective_scan_step/selective_scan_step.h"

using namespace gputest;

namespace {

// Four steps from a random state: outputs and the state against the fp64 CPU.
template <typename T>
std::string check_steps(ml::cpu::ScanStepDims d, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = d.batch * d.dim, bn = d.batch * d.dstate;
  std::vector<double> A(d.dim * d.dstate);
  for (int64_t c = 0; c < d.dim; ++c)
    for (int64_t k = 0; k < d.dstate; ++k) A[c * d.dstate + k] = -(k + 1) * rng.uniform(0.5, 1.5);
  A = rounded<float>(A);
  const auto D = rounded<float>(uniform(rng, d.dim)), bias = rounded<float>(uniform(rng, d.dim, -4, -1));
  auto h = rounded<float>(uniform(rng, n * d.dstate));
  Dev<float> gA(A), gD(D), gbias(bias), gh(h);
  Dev<T> gout(n);
  Errors errors(bound<T>());
  for (int step = 0; step < 4; ++step) {
    const auto u = rounded<T>(uniform(rng, n)), delta = rounded<T>(uniform(rng, n, -3, 1));
    const auto z = rounded<T>(uniform(rng, n, -2, 2)), B = rounded<T>(uniform(rng, bn)), C = rounded<T>(uniform(rng, bn));
    std::vector<double> out(n);
    ml::cpu::selective_scan_step<double>(
        d, {u.data(), delta.data(), B.data(), C.data(), z.data(), A.data(), D.data(), bias.data()}, h.data(), out.data());
    Dev<T> gu(u), gdelta(delta), gz(z), gB(B), gC(C);
    gout.poison();
    ml::cuda::selective_scan_step<T>(
        d, {gu.get(), gdelta.get(), gB.get(), gC.get(), gz.get(), gA.get(), gD.get(), gbias.get()}, gh.get(),
        gout.get(), nullptr);
    sync("selective_scan_step");
    errors.add(mltest::str("out", step), gout.download(), out);
    errors.add(mltest::str("h", step), gh.download(), h);
  }
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_selective_scan_step_fp32_matches_cpu) {
  // More states than a channel's 16 lanes, and fewer.
  return check_steps<float>({2, 96, 16}, 1201) + "; " + check_steps<float>({1, 33, 4}, 1202) + "; " +
         check_steps<float>({2, 17, 20}, 1206);
}
NATIVE_TEST(cuda_selective_scan_step_bf16_matches_cpu) { return check_steps<bf16>({3, 4096, 16}, 1203); }

namespace {

// Projected: x_proj's rows and dt_proj's weight in, three steps against the fp64 CPU.
template <typename T>
std::string check_projected(ml::cpu::ScanStepDims d, int64_t rank, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = d.batch * d.dim, width = rank + 2 * d.dstate;
  std::vector<double> A(d.dim * d.dstate);
  for (int64_t c = 0; c < d.dim; ++c)
    for (int64_t k = 0; k < d.dstate; ++k) A[c * d.dstate + k] = -(k + 1) * rng.uniform(0.5, 1.5);
  A = rounded<float>(A);
  const auto D = rounded<float>(uniform(rng, d.dim)), bias = rounded<float>(uniform(rng, d.dim, -4, -1));
  const auto dt_w = rounded<T>(uniform(rng, d.dim * rank, -0.3, 0.3));
  auto h = rounded<float>(uniform(rng, n * d.dstate));
  Dev<float> gA(A), gD(D), gbias(bias), gh(h);
  Dev<T> gdt_w(dt_w), gout(n);
  Errors errors(bound<T>());
  for (int step = 0; step < 3; ++step) {
    const auto u = rounded<T>(uniform(rng, n)), z = rounded<T>(uniform(rng, n, -2, 2));
    const auto xproj = rounded<T>(uniform(rng, d.batch * width));
    std::vector<double> out(n);
    ml::cpu::selective_scan_step<double>(d, {u.data(), nullptr, nullptr, nullptr, z.data(), A.data(), D.data(), bias.data()},
                                         {xproj.data(), dt_w.data(), rank}, h.data(), out.data());
    Dev<T> gu(u), gz(z), gxproj(xproj);
    gout.poison();
    ml::cuda::selective_scan_step<T>(d, {gu.get(), nullptr, nullptr, nullptr, gz.get(), gA.get(), gD.get(), gbias.get()},
                                     {gxproj.get(), gdt_w.get(), rank}, gh.get(), gout.get(), nullptr);
    sync("selective_scan_step (projected)");
    errors.add(mltest::str("out", step), gout.download(), out);
    errors.add(mltest::str("h", step), gh.download(), h);
  }
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_selective_scan_step_projected_fp32_matches_cpu) {
  // A rank that the 16 lanes split unevenly, and mamba-1.4b's step (rank 128, 4096 channels).
  return check_projected<float>({2, 96, 16}, 6, 1204) + "; " + check_projected<float>({1, 33, 2}, 37, 1207) + "; " +
         check_projected<float>({1, 4096, 16}, 128, 1208);
}
NATIVE_TEST(cuda_selective_scan_step_projected_bf16_matches_cpu) { return check_projected<bf16>({1, 1536, 16}, 48, 1205); }
