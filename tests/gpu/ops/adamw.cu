#include "gpu/gpu_test.h"
#include "ops/adamw/adamw.h"

using namespace gputest;

// Three tensors of different sizes and weight decays in one multi-tensor call, with the
// gradient scaled on the device (as after clipping) and the bf16 copy refreshed.
NATIVE_TEST(cuda_adamw_multi_tensor_matches_cpu) {
  ml::Rng rng(801);
  const std::vector<int64_t> sizes = {1000, 70001, 5};
  const std::vector<double> decays = {0.1, 0.0, 0.1};
  const double scale = 0.5;
  ml::cpu::AdamWParams o{1e-3, 0.9, 0.95, 1e-8, 0.0, 7};
  Errors errors(1e-5), copy_errors(1e-2);
  std::vector<std::unique_ptr<Dev<float>>> keep;
  std::vector<std::unique_ptr<Dev<bf16>>> copies;
  std::vector<ml::cuda::AdamWTensor> tensors;
  std::vector<std::vector<double>> want_p, want_m, want_v;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i];
    const auto p = rounded<float>(uniform(rng, n)), g = rounded<float>(uniform(rng, n));
    const auto m = rounded<float>(uniform(rng, n, -0.1, 0.1)), v = rounded<float>(uniform(rng, n, 0, 0.01));
    auto cp = p, cm = m, cv = v, cg = g;
    for (auto& x : cg) x *= scale;
    ml::cpu::AdamWParams oi = o;
    oi.weight_decay = decays[i];
    ml::cpu::adamw_update<double>(oi, cp.data(), cg.data(), cm.data(), cv.data(), n);
    want_p.push_back(cp);
    want_m.push_back(cm);
    want_v.push_back(cv);
    for (const auto* h : {&p, &g, &m, &v}) keep.push_back(std::make_unique<Dev<float>>(*h));
    copies.push_back(std::make_unique<Dev<bf16>>(n));
    copies.back()->poison();
    const size_t k = keep.size() - 4;
    tensors.push_back({keep[k]->get(), keep[k + 1]->get(), keep[k + 2]->get(), keep[k + 3]->get(), n,
                       float(decays[i]), copies.back()->get()});
  }
  Dev<float> gscale(std::vector<double>{scale});
  ml::cuda::adamw_update(o, tensors, gscale.get(), nullptr);
  sync("adamw");
  for (size_t i = 0; i < sizes.size(); ++i) {
    errors.add(mltest::str("param", i), keep[4 * i]->download(), want_p[i]);
    errors.add(mltest::str("m", i), keep[4 * i + 2]->download(), want_m[i]);
    errors.add(mltest::str("v", i), keep[4 * i + 3]->download(), want_v[i]);
    copy_errors.add(mltest::str("bf16 copy", i), copies[i]->download(), want_p[i]);
  }
  return errors.report() + "; " + copy_errors.report();
}

// A non-finite grad_scale (clip_coefficient's mark of a non-finite loss or norm) skips the
// update: weights, moments and the bf16 copy keep their bytes.
NATIVE_TEST(cuda_adamw_skips_on_a_non_finite_scale) {
  ml::Rng rng(802);
  const int64_t n = 40001;
  Dev<float> p(uniform(rng, n)), g(uniform(rng, n)), m(uniform(rng, n)), v(uniform(rng, n, 0, 0.01));
  Dev<bf16> copy(n);
  copy.poison();
  const auto before = p.bytes(), m_before = m.bytes(), v_before = v.bytes(), copy_before = copy.bytes();
  for (const double scale : {double(NAN), double(INFINITY)}) {
    Dev<float> gscale(std::vector<double>{scale});
    ml::cuda::adamw_update({1e-3, 0.9, 0.95, 1e-8, 0.1, 3}, {{p.get(), g.get(), m.get(), v.get(), n, 0.1f, copy.get()}},
                           gscale.get(), nullptr);
    sync("adamw");
    EXPECT(p.bytes() == before && m.bytes() == m_before && v.bytes() == v_before && copy.bytes() == copy_before,
           "scale ", scale, ": the update changed state");
  }
  return "NaN and inf scales: no byte changed";
}
