#include "nn/lm.h"

#include "core/error.h"
#include "layer_check.h"

using namespace mltest;

namespace {

using Cpu32 = ml::CpuBackend<float>;

ml::ModelConfig tiny_config(std::vector<ml::LayerSpec> layers) {
  ml::ModelConfig c;
  c.vocab_size = 37, c.pad_vocab_multiple = 8, c.d_model = 8, c.layers = std::move(layers), c.seed = 3;
  c.mamba.d_model = 8, c.mamba.d_state = 4;
  return c;
}

ml::ModelConfig moe_config(std::vector<ml::LayerSpec> layers, ml::RouterKind router) {
  auto c = tiny_config(std::move(layers));
  c.mlp = {ml::FfnKind::Gelu, 12};
  c.moe.num_experts = 3, c.moe.expert = {ml::FfnKind::SwiGLU, 6}, c.moe.router.kind = router;
  c.moe.router.capacity_factor = 1.25, c.moe.router_bias = true;
  return c;
}

template <class B>
double forward_loss(ml::LanguageModel<B>& model, const std::vector<int32_t>& tokens, int64_t batch) {
  model.forward(tokens.data(), batch, int64_t(tokens.size()) / batch, true);
  return double(*model.loss());
}

std::string check_lm_gradients(const ml::ModelConfig& config, uint64_t seed) {
  Cpu64 cpu;
  ml::LanguageModel<Cpu64> model(config, cpu);
  auto& params = model.params();
  ml::Rng rng(seed);
  randomise_parameters(params, rng);
  const int64_t batch = 2, len1 = 7;
  std::vector<int32_t> tokens(batch * len1);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 37);

  std::vector<std::vector<double>> vals(params.size()), grads(params.size());
  for (size_t i = 0; i < params.size(); ++i) vals[i] = values(params, i);
  auto loss = [&] {
    for (size_t i = 0; i < params.size(); ++i) std::copy(vals[i].begin(), vals[i].end(), params.master(i));
    return forward_loss(model, tokens, batch) + aux_loss(model.expert_stats());
  };
  model.zero_grad();
  loss();
  model.backward();
  std::vector<Input> inputs;
  for (size_t i = 0; i < params.size(); ++i) {
    grads[i] = gradient(params, i);
    inputs.push_back({params.spec(i).name, &vals[i], &grads[i]});
  }
  return str(params.size(), " parameters; ") + check_gradients(loss, inputs, rng);
}

}  // namespace

NATIVE_TEST(lm_gradients_match_finite_differences) { return check_lm_gradients(tiny_config({{'M'}, {'M'}}), 81); }

NATIVE_TEST(lm_moe_mamba_gradients_match_finite_differences) {
  return check_lm_gradients(moe_config({{'M'}, {'E'}}, ml::RouterKind::Switch), 82);
}

NATIVE_TEST(lm_parallel_and_mlp_gradients_match_finite_differences) {
  return check_lm_gradients(moe_config({{'M', 'E'}, {'F'}}, ml::RouterKind::Sinkhorn), 83);
}

// BlackMamba's released layout: GELU-gated experts (GeGLU), a dense GeGLU MLP and a final
// LayerNorm with a bias.
NATIVE_TEST(lm_geglu_and_final_layernorm_gradients_match_finite_differences) {
  auto c = moe_config({{'M'}, {'E'}, {'F'}}, ml::RouterKind::Sinkhorn);
  c.moe.expert.kind = ml::FfnKind::GeGLU, c.moe.router.capacity_factor = 0;  // dropless
  c.mlp.kind = ml::FfnKind::GeGLU;
  c.final_norm = ml::NormKind::LayerNorm;
  return check_lm_gradients(c, 86);
}

// Attention with learned positions next to Mamba (the Transformer baseline's and Jamba's
// ingredients), and attention with RoPE in a parallel group.
NATIVE_TEST(lm_attention_gradients_match_finite_differences) {
  auto transformer = tiny_config({{'A'}, {'F'}, {'M'}});
  transformer.mlp = {ml::FfnKind::Gelu, 12};
  transformer.attention = {4, 2, false, 10000};
  transformer.max_positions = 9;
  auto hybrid = moe_config({{'A', 'E'}, {'M'}}, ml::RouterKind::Switch);
  hybrid.attention = {2, 1, true, 10000};
  return "positions: " + check_lm_gradients(transformer, 84) + "; rope: " + check_lm_gradients(hybrid, 85);
}

NATIVE_TEST(lm_learned_positions_cover_max_positions_only) {
  Cpu32 cpu;
  auto c = tiny_config({{'A'}});
  c.max_positions = 3;
  ml::LanguageModel<Cpu32> model(c, cpu);
  EXPECT(model.params().spec(1).name == "backbone.pos_embedding.weight" &&
             model.params().spec(1).shape == ml::Shape({3, 8}),
         "the position table follows the embedding");
  const std::vector<int32_t> fits = {1, 2, 3, 4}, longer = {1, 2, 3, 4, 5};
  forward_loss(model, fits, 1);
  try {
    forward_loss(model, longer, 1);
    throw Failure("4 positions accepted with max_positions 3");
  } catch (const ml::Error& e) {
    EXPECT(std::string(e.what()).find("max_positions 3") != std::string::npos, e.what());
  }
  return "3 positions train, 4 are refused naming max_positions";
}

NATIVE_TEST(lm_names_parameters_like_mamba_ssm) {
  Cpu32 cpu;
  ml::LanguageModel<Cpu32> model(tiny_config({{'M'}, {'M'}}), cpu);
  const auto& p = model.params();
  EXPECT(p.spec(0).name == "backbone.embedding.weight", p.spec(0).name);
  EXPECT(p.spec(0).shape == ml::Shape({40, 8}), "embedding rows padded to a multiple of 8");
  EXPECT(p.spec(1).name == "backbone.layers.0.norm.weight", p.spec(1).name);
  EXPECT(p.spec(2).name == "backbone.layers.0.mixer.in_proj.weight", p.spec(2).name);
  EXPECT(p.spec(p.size() - 1).name == "backbone.norm_f.weight", p.spec(p.size() - 1).name);
  EXPECT(p.spec(p.index("backbone.layers.1.mixer.conv1d.weight")).file_shape == ml::Shape({16, 1, 4}),
         "conv1d file shape");
  return str(p.size(), " parameters, mamba_ssm names");
}

NATIVE_TEST(lm_rejects_unknown_layers_repeated_branches_and_bad_tokens) {
  Cpu32 cpu;
  for (const auto& [layers, want] : std::vector<std::pair<std::vector<ml::LayerSpec>, std::string>>{
           {{{'M'}, {'X'}}, "unknown kind 'X'"}, {{{'M', 'M'}}, "repeats 'M'"}, {{}, "pattern is empty"}}) {
    try {
      ml::LanguageModel<Cpu32> model(tiny_config(layers), cpu);
      throw Failure("layers '" + ml::describe_layers(layers) + "' accepted");
    } catch (const ml::Error& e) {
      EXPECT(std::string(e.what()).find(want) != std::string::npos, e.what());
    }
  }
  ml::LanguageModel<Cpu32> model(tiny_config({{'M'}}), cpu);
  const std::vector<int32_t> tokens = {1, 2, 37, 4};
  try {
    forward_loss(model, tokens, 1);
    throw Failure("token 37 accepted with vocab 37");
  } catch (const ml::Error& e) {
    EXPECT(std::string(e.what()).find("37") != std::string::npos, e.what());
  }
  return "unknown layer kind, repeated branch, empty pattern and out-of-vocabulary token rejected";
}

NATIVE_TEST(lm_same_seed_gives_same_weights_and_loss) {
  Cpu32 cpu;
  ml::LanguageModel<Cpu32> a(tiny_config({{'M'}, {'M'}}), cpu), b(tiny_config({{'M'}, {'M'}}), cpu);
  const std::vector<int32_t> tokens = {1, 5, 9, 2, 30, 7, 7, 3};
  const double la = forward_loss(a, tokens, 2), lb = forward_loss(b, tokens, 2);
  EXPECT(la == lb, la, " vs ", lb);
  EXPECT(std::abs(la - std::log(40.0)) < 0.5, "initial loss near log(vocab): ", la);
  return str("loss ", la, " twice");
}

// The fp32 and fp64 CPU models draw their weights from one recipe: the same values, rounded.
NATIVE_TEST(lm_float_and_double_models_start_from_the_same_weights) {
  const auto config = moe_config({{'M', 'E'}, {'F'}}, ml::RouterKind::Switch);
  Cpu32 cpu32;
  Cpu64 cpu64;
  ml::LanguageModel<Cpu32> f(config, cpu32);
  ml::LanguageModel<Cpu64> d(config, cpu64);
  EXPECT(f.params().size() == d.params().size(), "parameter counts differ");
  int64_t checked = 0;
  for (size_t i = 0; i < f.params().size(); ++i)
    for (int64_t k = 0; k < f.params().spec(i).numel; ++k, ++checked)
      EXPECT(f.params().master(i)[k] == float(d.params().master(i)[k]), f.params().spec(i).name, "[", k, "]");
  return str(checked, " values equal");
}
