#include "ops/grad_clip/grad_clip.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(grad_clip_scales_to_the_max_norm_across_tensors) {
  std::vector<double> a = {3.0, 0.0}, b = {0.0, 4.0, 0.0};  // global norm 5
  const std::vector<ml::cpu::GradSpan<double>> grads = {{a.data(), 2}, {b.data(), 3}};
  const double norm = ml::cpu::clip_grad_norm(grads, 1.0);
  EXPECT(std::abs(norm - 5.0) < 1e-15, "norm ", norm);
  const double scale = 1.0 / (5.0 + 1e-6);
  EXPECT(std::abs(a[0] - 3 * scale) < 1e-15 && std::abs(b[1] - 4 * scale) < 1e-15, "clipped to ", a[0], ", ", b[1]);
  EXPECT(std::abs(ml::cpu::global_norm(grads) - 1.0) < 1e-6, "norm after clipping");
  return "norm 5 clipped to 1";
}

NATIVE_TEST(grad_clip_leaves_small_gradients_alone) {
  std::vector<double> a(100000, 1e-3);  // norm 0.316, over several parallel chunks
  const double norm = ml::cpu::clip_grad_norm<double>({{a.data(), int64_t(a.size())}}, 1.0);
  EXPECT(std::abs(norm - std::sqrt(0.1)) < 1e-12, "norm ", norm);
  EXPECT(a[0] == 1e-3 && a.back() == 1e-3, "gradient changed");
  return "norm 0.316 under 1: unchanged";
}

// The optimizer's coefficient: the norm and the clip of the averaged gradients (scale = 1/K),
// NaN for a non-finite norm or loss (the optimizer then skips the step); gradients untouched.
NATIVE_TEST(grad_clip_coefficient_scales_clips_and_marks_non_finite_steps) {
  std::vector<double> a = {3.0, 0.0}, b = {0.0, 4.0, 0.0};  // norm 5, averaged over 2: 2.5
  const std::vector<ml::cpu::GradSpan<double>> grads = {{a.data(), 2}, {b.data(), 3}};
  double norm = 0, coef = 0;
  ml::cpu::clip_coefficient(grads, 1.0, 0.5, nullptr, &norm, &coef);
  EXPECT(norm == 2.5 && std::abs(coef - 0.5 / (2.5 + 1e-6)) < 1e-15, "norm ", norm, " coef ", coef);
  EXPECT(a[0] == 3.0 && b[1] == 4.0, "gradients changed");
  ml::cpu::clip_coefficient(grads, 10.0, 0.5, nullptr, &norm, &coef);
  EXPECT(coef == 0.5, "unclipped coefficient is the scale, got ", coef);
  const double finite = 2.0, nan = std::nan("");
  ml::cpu::clip_coefficient(grads, 1.0, 1.0, &finite, &norm, &coef);
  EXPECT(std::isfinite(coef), "a finite loss keeps the step");
  ml::cpu::clip_coefficient(grads, 1.0, 1.0, &nan, &norm, &coef);
  EXPECT(std::isnan(coef) && norm == 5.0, "a NaN loss marks the step, norm ", norm);
  b[2] = INFINITY;
  ml::cpu::clip_coefficient(grads, 1.0, 1.0, &finite, &norm, &coef);
  EXPECT(std::isnan(coef) && std::isinf(norm), "an infinite gradient marks the step");
  return "scaled norm, clip of the average, NaN mark for non-finite loss or norm";
}
