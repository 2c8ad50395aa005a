#include "gpu/gpu_test.h"
#include "ops/grad_clip/grad_clip.h"

using namespace gputest;

namespace {

std::string check_clip(double max_norm, uint64_t seed) {
  ml::Rng rng(seed);
  const std::vector<int64_t> sizes = {100003, 333, 1, 65536};
  std::vector<std::vector<double>> host;
  std::vector<std::unique_ptr<Dev<float>>> dev;
  std::vector<ml::cpu::GradSpan<double>> cpu_spans;
  std::vector<ml::cuda::GradSpan<float>> gpu_spans;
  for (int64_t n : sizes) host.push_back(rounded<float>(uniform(rng, n)));
  for (auto& h : host) {
    dev.push_back(std::make_unique<Dev<float>>(h));
    gpu_spans.push_back({dev.back()->get(), int64_t(h.size())});
  }
  for (auto& h : host) cpu_spans.push_back({h.data(), int64_t(h.size())});
  const double norm = ml::cpu::clip_grad_norm<double>(cpu_spans, max_norm);
  Dev<float> gnorm(1);
  gnorm.poison();
  ml::cuda::clip_grad_norm(gpu_spans, max_norm, gnorm.get(), nullptr);
  sync("clip_grad_norm");
  Errors errors(1e-5);
  errors.add("norm", gnorm.download(), {norm});
  for (size_t i = 0; i < host.size(); ++i) errors.add(mltest::str("grad", i), dev[i]->download(), host[i]);
  return errors.report() + (norm > max_norm ? " (clipped)" : " (not clipped)");
}

}  // namespace

NATIVE_TEST(cuda_clip_grad_norm_matches_cpu) { return check_clip(1.0, 901) + "; " + check_clip(1e6, 902); }
