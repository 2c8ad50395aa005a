#include "nn/mamba.h"

#include <cmath>

#include "layer_check.h"

using namespace mltest;

NATIVE_TEST(mamba_mixer_backward_matches_finite_differences) {
  ml::MambaConfig cfg;
  cfg.d_model = 10, cfg.d_state = 4;
  Cpu64 cpu;
  Params64 params(cpu);
  ml::MambaMixer<Cpu64> mixer(cfg, params, "mixer.", 2);
  params.allocate(9);
  ml::Rng rng(71);
  return check_layer_gradients(mixer, params, cfg.d_model, rng, 2, 7);
}

NATIVE_TEST(mamba_mixer_initialisation_follows_the_reference) {
  ml::MambaConfig cfg;
  cfg.d_model = 64;
  ml::CpuBackend<float> cpu;
  ml::ParamStore<ml::CpuBackend<float>> params(cpu);
  ml::MambaMixer<ml::CpuBackend<float>> mixer(cfg, params, "m.", 4);
  params.allocate(1);
  const auto at = [&](const char* name) { return params.index(std::string("m.") + name); };
  const float* A_log = params.master(at("A_log"));
  EXPECT(params.spec(at("A_log")).shape[1] == 16 && std::abs(A_log[5] - std::log(6.0f)) < 1e-6, "A_log = log(1..16)");
  EXPECT(params.master(at("D"))[0] == 1.0f, "D = 1");
  EXPECT(params.spec(at("x_proj.weight")).shape[0] == 4 + 32, "dt_rank = ceil(64/16) = 4");
  const float* bias = params.master(at("dt_proj.bias"));
  for (int64_t i = 0; i < params.spec(at("dt_proj.bias")).numel; ++i) {
    const double dt = std::log1p(std::exp(double(bias[i])));
    EXPECT(dt >= 0.001 * 0.999 && dt <= 0.1 * 1.001, "softplus(dt bias) in [dt_min, dt_max], got ", dt);
  }
  const float* out = params.master(at("out_proj.weight"));
  const double bound = 1.0 / std::sqrt(128.0) / std::sqrt(4.0);
  double largest = 0;
  for (int64_t i = 0; i < params.spec(at("out_proj.weight")).numel; ++i)
    largest = std::max(largest, std::abs(double(out[i])));
  EXPECT(largest <= bound && largest > 0.9 * bound, "out_proj within U(±", bound, "), max ", largest);
  EXPECT(!params.spec(at("A_log")).weight_decay && !params.spec(at("D")).weight_decay &&
             !params.spec(at("conv1d.bias")).weight_decay && params.spec(at("in_proj.weight")).weight_decay,
         "no weight decay on A_log, D and biases");
  EXPECT(params.spec(at("conv1d.weight")).file_shape == ml::Shape({128, 1, 4}), "conv1d file shape (d_inner, 1, 4)");
  return "A_log, D, dt_rank, dt bias range, out_proj scale, decay flags, file shapes";
}
