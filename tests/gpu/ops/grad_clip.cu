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

// The optimizer's coefficient against the CPU reference: scaled norms (averaged micro-batches),
// clipped or not, and the NaN mark for a non-finite loss or norm.
NATIVE_TEST(cuda_clip_coefficient_matches_cpu) {
  ml::Rng rng(903);
  auto host = rounded<float>(uniform(rng, 200003));
  Dev<float> grads(host);
  const std::vector<ml::cpu::GradSpan<double>> cpu_spans = {{host.data(), int64_t(host.size())}};
  std::string out;
  struct Case { double max_norm, scale, loss; };
  for (const Case c : {Case{1.0, 0.25, 2.0}, Case{1e6, 0.5, 2.0}, Case{0.0, 1.0, 2.0}, Case{1.0, 1.0, double(NAN)},
                       Case{1.0, 1.0, double(INFINITY)}}) {
    double want_norm = 0, want_coef = 0;
    ml::cpu::clip_coefficient(cpu_spans, c.max_norm, c.scale, &c.loss, &want_norm, &want_coef);
    Dev<float> loss(std::vector<double>{c.loss}), norm_coef(2);
    norm_coef.poison();
    ml::cuda::clip_coefficient({{grads.get(), int64_t(host.size())}}, c.max_norm, c.scale, loss.get(),
                               norm_coef.get(), norm_coef.get() + 1, nullptr);
    sync("clip_coefficient");
    const auto got = norm_coef.download();
    Errors errors(1e-5);
    errors.add("norm", {got[0]}, {want_norm});
    if (std::isnan(want_coef)) {
      EXPECT(std::isnan(got[1]), "loss ", c.loss, ": coefficient ", got[1], " is not the NaN mark");
    } else {
      errors.add("coef", {got[1]}, {want_coef});
    }
    out += (out.empty() ? "" : "; ") + errors.report();
  }
  EXPECT(grads.download() == host, "the gradients changed");
  return out;
}
