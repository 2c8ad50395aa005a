#include "nn/moe.h"

#include "layer_check.h"
#include "nn/mlp.h"

using namespace mltest;

namespace {

ml::MoeConfig moe_config(ml::FfnKind kind, ml::cpu::RouterKind router, int64_t top_k, double capacity) {
  ml::MoeConfig c;
  c.num_experts = 4, c.expert.kind = kind, c.expert.hidden = 6, c.router.kind = router, c.router.top_k = top_k;
  c.router.capacity_factor = capacity, c.router.aux_weight = 0.05, c.router_bias = router == ml::cpu::RouterKind::Sinkhorn;
  return c;
}

}  // namespace

NATIVE_TEST(moe_switch_gelu_with_capacity_backward_matches_finite_differences) {
  ml::ParamList<double> params;
  ml::MoeLayer<double> moe(5, moe_config(ml::FfnKind::Gelu, ml::cpu::RouterKind::Switch, 1, 1.0), params, "moe.", 1, 2);
  ml::Rng rng(121);
  return check_layer_gradients(moe, params, 5, rng);
}

// Top-2 of 2 experts, dropless: every token uses both, so the loss is smooth in the router
// logits (with more experts, the second choice could flip under a finite-difference step).
NATIVE_TEST(moe_top2_swiglu_dropless_backward_matches_finite_differences) {
  ml::ParamList<double> params;
  auto config = moe_config(ml::FfnKind::SwiGLU, ml::cpu::RouterKind::Switch, 2, 0);
  config.num_experts = 2;
  ml::MoeLayer<double> moe(5, config, params, "moe.", 1, 2);
  ml::Rng rng(122);
  return check_layer_gradients(moe, params, 5, rng);
}

NATIVE_TEST(moe_sinkhorn_swiglu_backward_matches_finite_differences) {
  ml::ParamList<double> params;
  ml::MoeLayer<double> moe(5, moe_config(ml::FfnKind::SwiGLU, ml::cpu::RouterKind::Sinkhorn, 1, 0), params, "moe.", 1,
                           2);
  ml::Rng rng(123);
  return check_layer_gradients(moe, params, 5, rng);
}

NATIVE_TEST(mlp_backward_matches_finite_differences) {
  std::string out;
  for (auto kind : {ml::FfnKind::Gelu, ml::FfnKind::SwiGLU}) {
    ml::ParamList<double> params;
    ml::MlpLayer<double> mlp(6, {kind, 7}, params, "mlp.", 1, 2);
    ml::Rng rng(124);
    out += (out.empty() ? "" : "; ") + check_layer_gradients(mlp, params, 6, rng);
  }
  return out;
}

// One expert with capacity for everything and gate 1 would be the MLP; with the switch
// router the gate is softmax over one expert = 1, so outputs must match an MLP exactly.
NATIVE_TEST(moe_with_one_expert_equals_the_mlp) {
  ml::ParamList<double> pm, pe;
  ml::MlpLayer<double> mlp(4, {ml::FfnKind::Gelu, 8}, pm, "mlp.", 3, 1);
  auto c = moe_config(ml::FfnKind::Gelu, ml::cpu::RouterKind::Switch, 1, 0);
  c.num_experts = 1, c.expert.hidden = 8;
  ml::MoeLayer<double> moe(4, c, pe, "moe.", 3, 1);
  std::copy_n(pm.find("mlp.fc1.weight").value.data(), 32, pe.find("moe.experts.fc1.weight").value.data());
  std::copy_n(pm.find("mlp.fc2.weight").value.data(), 32, pe.find("moe.experts.fc2.weight").value.data());
  ml::Rng rng(125);
  auto x = random_vector(rng, 3 * 5 * 4);
  std::vector<double> a(x.size()), b(x.size());
  mlp.forward(x.data(), a.data(), 3, 5);
  moe.forward(x.data(), b.data(), 3, 5);
  for (size_t i = 0; i < a.size(); ++i) EXPECT(std::abs(a[i] - b[i]) < 1e-14, "element ", i, ": ", a[i], " vs ", b[i]);
  return "identical outputs";
}
