#include "gpu/gpu_test.h"
#include "ops/mamba_input_step/mamba_input_step.h"

using namespace gputest;

namespace {

// Three steps from a random window: the residual stream, z, xc and the shifted window against
// the fp64 CPU op, on inputs rounded as the model holds them.
template <typename T>
std::string check_steps(ml::cpu::MambaInputStepDims d, bool with_residual, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t D = d.d_model, Di = d.d_inner, W = d.width;
  EXPECT(ml::cuda::mamba_input_step_fits(d, sizeof(T)), "batch ", d.batch, " d_model ", D, " should fit one kernel");
  const auto norm_w = rounded<float>(uniform(rng, D, 0.5, 1.5)), in_proj = rounded<T>(uniform(rng, 2 * Di * D));
  const auto conv_w = rounded<float>(uniform(rng, Di * W)), conv_b = rounded<float>(uniform(rng, Di));
  auto window = rounded<T>(uniform(rng, d.batch * (W - 1) * Di));
  Dev<T> gin_proj(in_proj), gwindow(window), gxc(d.batch * Di), gz(d.batch * Di);
  Dev<float> gnorm_w(norm_w), gconv_w(conv_w), gconv_b(conv_b), gresidual_out(d.batch * D);
  Errors errors(bound<T>());
  for (int step = 0; step < 3; ++step) {
    const auto x = rounded<T>(uniform(rng, d.batch * D, -2, 2)), residual = rounded<float>(uniform(rng, d.batch * D, -2, 2));
    std::vector<double> residual_out(d.batch * D), xc(d.batch * Di), z(d.batch * Di);
    ml::cpu::mamba_input_step<double>(d, x.data(), with_residual ? residual.data() : nullptr, norm_w.data(),
                                      residual_out.data(), in_proj.data(), window.data(), conv_w.data(),
                                      conv_b.data(), xc.data(), z.data());
    Dev<T> gx(x);
    Dev<float> gresidual(residual);
    gxc.poison();
    gz.poison();
    gresidual_out.poison();
    ml::cuda::mamba_input_step<T>(d, gx.get(), with_residual ? gresidual.get() : nullptr, gnorm_w.get(),
                                  gresidual_out.get(), gin_proj.get(), gwindow.get(), gconv_w.get(), gconv_b.get(),
                                  gxc.get(), gz.get(), nullptr);
    sync("mamba_input_step");
    errors.add(mltest::str("residual_out ", step), gresidual_out.download(), residual_out);
    errors.add(mltest::str("z ", step), gz.download(), z);
    errors.add(mltest::str("xc ", step), gxc.download(), xc);
    // The window holds xi rounded to T; the fp64 reference's is not.
    errors.add(mltest::str("window ", step), gwindow.download(), window);
    window = rounded<T>(window);
  }
  return mltest::str(d.batch, "x", D, "->", Di, " width ", W, ": ", errors.report());
}

}  // namespace

NATIVE_TEST(cuda_mamba_input_step_fp32_matches_cpu) {
  return check_steps<float>({1, 768, 1536, 4, 1e-5}, true, 901) + "; " +
         check_steps<float>({3, 130, 70, 3, 1e-5}, false, 902) + "; " +
         check_steps<float>({4, 2500, 300, 4, 1e-5}, true, 903);
}
NATIVE_TEST(cuda_mamba_input_step_bf16_matches_cpu) {
  // Warps per column 1 to 8: the 1.4b and 130m shapes, d_model over one slice, few columns.
  return check_steps<bf16>({1, 2048, 4096, 4, 1e-5}, true, 911) + "; " +
         check_steps<bf16>({1, 768, 1536, 4, 1e-5}, true, 912) + "; " +
         check_steps<bf16>({2, 5000, 64, 4, 1e-5}, true, 913) + "; " +
         check_steps<bf16>({4, 100, 20, 2, 1e-5}, false, 914);
}

NATIVE_TEST(cuda_mamba_input_step_waits_for_its_input) {
  // Chained right after a kernel that writes x late: the same bits as after a synchronised copy.
  const ml::cpu::MambaInputStepDims d{1, 2048, 4096, 4, 1e-5};
  ml::Rng rng(921);
  const auto x = rounded<bf16>(uniform(rng, d.d_model, -2, 2)), residual = uniform(rng, d.d_model);
  const auto norm_w = uniform(rng, d.d_model, 0.5, 1.5), in_proj = rounded<bf16>(uniform(rng, 2 * d.d_inner * d.d_model));
  const auto conv_w = uniform(rng, d.d_inner * d.width), window = rounded<bf16>(uniform(rng, 3 * d.d_inner));
  Dev<bf16> gx_final(x), gx(d.d_model), gin_proj(in_proj), gwindow_a(window), gwindow_b(window);
  Dev<bf16> gxc_a(d.d_inner), gz_a(d.d_inner), gxc_b(d.d_inner), gz_b(d.d_inner);
  Dev<float> gresidual(residual), gnorm_w(norm_w), gconv_w(conv_w), gr_a(d.d_model), gr_b(d.d_model);
  ml::cuda::mamba_input_step<bf16>(d, gx_final.get(), gresidual.get(), gnorm_w.get(), gr_a.get(), gin_proj.get(),
                                   gwindow_a.get(), gconv_w.get(), nullptr, gxc_a.get(), gz_a.get(), nullptr);
  gx.poison();
  ml::cuda::launch_chained("copy_late", copy_late<bf16>, dim3(64), dim3(256), 0, nullptr, gx_final.get(), gx.get(),
                           d.d_model);
  ml::cuda::mamba_input_step<bf16>(d, gx.get(), gresidual.get(), gnorm_w.get(), gr_b.get(), gin_proj.get(),
                                   gwindow_b.get(), gconv_w.get(), nullptr, gxc_b.get(), gz_b.get(), nullptr);
  sync("mamba_input_step (chained)");
  const auto pairs = {std::make_pair(gxc_a.download(), gxc_b.download()), std::make_pair(gz_a.download(), gz_b.download()),
                      std::make_pair(gr_a.download(), gr_b.download()), std::make_pair(gwindow_a.download(), gwindow_b.download())};
  int which = 0;
  for (const auto& [a, b] : pairs) {
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT(a[i] == b[i], "output ", which, "[", i, "] ", b[i], " vs ", a[i], " (read x before the kernel writing it had finished?)");
    ++which;
  }
  return "xc, z, residual_out and window bit-identical to the op after a finished copy";
}
