#include "nn/lm.h"

#include "../harness.h"
#include "core/error.h"

using namespace mltest;

namespace {

ml::ModelConfig tiny_config(const std::string& layers) {
  ml::ModelConfig c;
  c.vocab_size = 37, c.padded_vocab = 40, c.d_model = 8, c.layers = layers, c.seed = 3;
  c.mamba.d_model = 8, c.mamba.d_state = 4;
  return c;
}

}  // namespace

namespace {

std::string check_lm_gradients(const ml::ModelConfig& config, uint64_t seed) {
  ml::LanguageModel<double> model(config);
  auto& params = model.params();
  ml::Rng rng(seed);
  randomise_parameters(params, rng);
  const int64_t batch = 2, len1 = 7;
  std::vector<int32_t> tokens(batch * len1);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 37);

  std::vector<std::vector<double>> values(params.size()), grads(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    values[i].assign(params[i].value.data(), params[i].value.data() + params[i].value.numel());
  auto loss = [&] {
    for (size_t i = 0; i < params.size(); ++i) std::copy(values[i].begin(), values[i].end(), params[i].value.data());
    return model.forward(tokens.data(), batch, len1) + model.aux_loss();
  };
  model.zero_grad();
  loss();
  model.backward();
  std::vector<Input> inputs;
  for (size_t i = 0; i < params.size(); ++i) {
    grads[i].assign(params[i].grad.data(), params[i].grad.data() + params[i].grad.numel());
    inputs.push_back({params[i].name, &values[i], &grads[i]});
  }
  return str(params.size(), " parameters; ") + check_gradients(loss, inputs, rng);
}

ml::ModelConfig moe_config(const std::string& layers, ml::cpu::RouterKind router) {
  auto c = tiny_config(layers);
  c.mlp = {ml::FfnKind::Gelu, 12};
  c.moe.num_experts = 3, c.moe.expert = {ml::FfnKind::SwiGLU, 6}, c.moe.router.kind = router;
  c.moe.router.capacity_factor = 1.25, c.moe.router_bias = true;
  return c;
}

}  // namespace

NATIVE_TEST(lm_gradients_match_finite_differences) { return check_lm_gradients(tiny_config("M M"), 81); }

NATIVE_TEST(lm_moe_mamba_gradients_match_finite_differences) {
  return check_lm_gradients(moe_config("M E", ml::cpu::RouterKind::Switch), 82);
}

NATIVE_TEST(lm_parallel_and_mlp_gradients_match_finite_differences) {
  return check_lm_gradients(moe_config("M|E F", ml::cpu::RouterKind::Sinkhorn), 83);
}

NATIVE_TEST(lm_names_parameters_like_mamba_ssm) {
  ml::LanguageModel<float> model(tiny_config("M M"));
  auto& p = model.params();
  EXPECT(p[0].name == "backbone.embedding.weight", p[0].name);
  EXPECT(p[1].name == "backbone.layers.0.norm.weight", p[1].name);
  EXPECT(p[2].name == "backbone.layers.0.mixer.in_proj.weight", p[2].name);
  EXPECT(p[p.size() - 1].name == "backbone.norm_f.weight", p[p.size() - 1].name);
  EXPECT(p.find("backbone.layers.1.mixer.conv1d.weight").file_shape == ml::Shape({16, 1, 4}), "conv1d file shape");
  return str(p.size(), " parameters, mamba_ssm names");
}

NATIVE_TEST(lm_rejects_unknown_layers_and_bad_tokens) {
  try {
    ml::LanguageModel<float> model(tiny_config("M X"));
    throw Failure("layer 'X' accepted");
  } catch (const ml::Error& e) {
    EXPECT(std::string(e.what()).find("'X'") != std::string::npos, e.what());
  }
  ml::LanguageModel<float> model(tiny_config("M"));
  const std::vector<int32_t> tokens = {1, 2, 37, 4};
  try {
    model.forward(tokens.data(), 1, 4);
    throw Failure("token 37 accepted with vocab 37");
  } catch (const ml::Error& e) {
    EXPECT(std::string(e.what()).find("37") != std::string::npos, e.what());
  }
  return "unknown layer kind and out-of-vocabulary token rejected";
}

NATIVE_TEST(lm_same_seed_gives_same_weights_and_loss) {
  ml::LanguageModel<float> a(tiny_config("M M")), b(tiny_config("M M"));
  const std::vector<int32_t> tokens = {1, 5, 9, 2, 30, 7, 7, 3};
  const double la = a.forward(tokens.data(), 2, 4), lb = b.forward(tokens.data(), 2, 4);
  EXPECT(la == lb, la, " vs ", lb);
  EXPECT(std::abs(la - std::log(40.0)) < 0.5, "initial loss near log(vocab): ", la);
  return str("loss ", la, " twice");
}
