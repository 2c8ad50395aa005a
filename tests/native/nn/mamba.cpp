#include "nn/mamba.h"

#include "layer_check.h"

using namespace mltest;

NATIVE_TEST(mamba_mixer_backward_matches_finite_differences) {
  ml::MambaConfig cfg;
  cfg.d_model = 10, cfg.d_state = 4;
  ml::ParamList<double> params;
  ml::MambaMixer<double> mixer(cfg, params, "mixer.", 9, 2);
  ml::Rng rng(71);
  return check_layer_gradients(mixer, params, cfg.d_model, rng, 2, 7);
}

NATIVE_TEST(mamba_mixer_initialisation_follows_the_reference) {
  ml::MambaConfig cfg;
  cfg.d_model = 64;
  ml::ParamList<float> params;
  ml::MambaMixer<float> mixer(cfg, params, "m.", 1, 4);
  const auto& A_log = params.find("m.A_log").value;
  EXPECT(A_log.dim(1) == 16 && std::abs(A_log.data()[5] - std::log(6.0f)) < 1e-6, "A_log = log(1..16)");
  EXPECT(params.find("m.D").value.data()[0] == 1.0f, "D = 1");
  EXPECT(params.find("m.x_proj.weight").value.dim(0) == 4 + 32, "dt_rank = ceil(64/16) = 4");
  const auto& bias = params.find("m.dt_proj.bias").value;
  for (int64_t i = 0; i < bias.numel(); ++i) {
    const double dt = std::log1p(std::exp(double(bias.data()[i])));
    EXPECT(dt >= 0.001 * 0.999 && dt <= 0.1 * 1.001, "softplus(dt bias) in [dt_min, dt_max], got ", dt);
  }
  const auto& out = params.find("m.out_proj.weight").value;
  const double bound = 1.0 / std::sqrt(128.0) / std::sqrt(4.0);
  double largest = 0;
  for (int64_t i = 0; i < out.numel(); ++i) largest = std::max(largest, std::abs(double(out.data()[i])));
  EXPECT(largest <= bound && largest > 0.9 * bound, "out_proj within U(±", bound, "), max ", largest);
  EXPECT(!params.find("m.A_log").weight_decay && !params.find("m.D").weight_decay &&
             !params.find("m.conv1d.bias").weight_decay && params.find("m.in_proj.weight").weight_decay,
         "no weight decay on A_log, D and biases");
  return "A_log, D, dt_rank, dt bias range, out_proj scale, decay flags";
}
