#include "nn/moe.h"

#include "layer_check.h"
#include "nn/mlp.h"

using namespace mltest;

namespace {

ml::MoeConfig moe_config(ml::FfnKind kind, ml::RouterKind router, int64_t top_k, double capacity) {
  ml::MoeConfig c;
  c.num_experts = 4, c.expert.kind = kind, c.expert.hidden = 6, c.router.kind = router, c.router.top_k = top_k;
  c.router.capacity_factor = capacity, c.router.aux_weight = 0.05, c.router_bias = router == ml::RouterKind::Sinkhorn;
  return c;
}

std::string check_moe(const ml::MoeConfig& config, uint64_t seed) {
  Cpu64 cpu;
  Params64 params(cpu);
  ml::MoeLayer<Cpu64> moe(5, config, params, "moe.", 2);
  params.allocate(1);
  ml::Rng rng(seed);
  return check_layer_gradients(moe, params, 5, rng);
}

}  // namespace

NATIVE_TEST(moe_switch_gelu_with_capacity_backward_matches_finite_differences) {
  return check_moe(moe_config(ml::FfnKind::Gelu, ml::RouterKind::Switch, 1, 1.0), 121);
}

// Top-2 of 2 experts, dropless: every token uses both, so the loss is smooth in the router
// logits (with more experts, the second choice could flip under a finite-difference step).
NATIVE_TEST(moe_top2_swiglu_dropless_backward_matches_finite_differences) {
  auto config = moe_config(ml::FfnKind::SwiGLU, ml::RouterKind::Switch, 2, 0);
  config.num_experts = 2;
  return check_moe(config, 122);
}

NATIVE_TEST(moe_sinkhorn_swiglu_backward_matches_finite_differences) {
  return check_moe(moe_config(ml::FfnKind::SwiGLU, ml::RouterKind::Sinkhorn, 1, 0), 123);
}

NATIVE_TEST(mlp_backward_matches_finite_differences) {
  std::string out;
  for (auto kind : {ml::FfnKind::Gelu, ml::FfnKind::SwiGLU}) {
    Cpu64 cpu;
    Params64 params(cpu);
    ml::MlpLayer<Cpu64> mlp(6, {kind, 7}, params, "mlp.", 2);
    params.allocate(1);
    ml::Rng rng(124);
    out += (out.empty() ? "" : "; ") + check_layer_gradients(mlp, params, 6, rng);
  }
  return out;
}

// With the switch router the gate of a single expert is softmax over one = 1, so a MoE of one
// expert with room for every token must compute exactly the MLP.
NATIVE_TEST(moe_with_one_expert_equals_the_mlp) {
  Cpu64 cpu;
  Params64 pm(cpu), pe(cpu);
  ml::MlpLayer<Cpu64> mlp(4, {ml::FfnKind::Gelu, 8}, pm, "mlp.", 1);
  auto c = moe_config(ml::FfnKind::Gelu, ml::RouterKind::Switch, 1, 0);
  c.num_experts = 1, c.expert.hidden = 8;
  ml::MoeLayer<Cpu64> moe(4, c, pe, "moe.", 1);
  pm.allocate(3);
  pe.allocate(3);
  std::copy_n(pm.master(pm.index("mlp.fc1.weight")), 32, pe.master(pe.index("moe.experts.fc1.weight")));
  std::copy_n(pm.master(pm.index("mlp.fc2.weight")), 32, pe.master(pe.index("moe.experts.fc2.weight")));
  ml::Rng rng(125);
  auto x = random_vector(rng, 3 * 5 * 4);
  std::vector<double> a(x.size()), b(x.size());
  mlp.forward(x.data(), a.data(), 3, 5);
  moe.forward(x.data(), b.data(), 3, 5);
  for (size_t i = 0; i < a.size(); ++i) EXPECT(std::abs(a[i] - b[i]) < 1e-14, "element ", i, ": ", a[i], " vs ", b[i]);
  return "identical outputs";
}

// Routing statistics reach the caller: counts of kept tokens per expert and the dropped.
NATIVE_TEST(moe_reports_counts_and_drops) {
  Cpu64 cpu;
  Params64 params(cpu);
  auto c = moe_config(ml::FfnKind::Gelu, ml::RouterKind::Switch, 1, 0.5);
  ml::MoeLayer<Cpu64> moe(5, c, params, "moe.", 1);
  params.allocate(4);
  ml::Rng rng(126);
  const auto x = random_vector(rng, 2 * 8 * 5);
  std::vector<double> y(x.size());
  moe.forward(x.data(), y.data(), 2, 8);
  std::vector<ml::ExpertStats> stats;
  moe.expert_stats(stats);
  EXPECT(stats.size() == 1 && stats[0].experts == 4, stats.size(), " stats");
  int64_t kept = 0;
  for (int64_t e = 0; e < 4; ++e) {
    EXPECT(stats[0].counts[e] <= 2, "expert ", e, " took ", stats[0].counts[e], " over its capacity 2");
    kept += stats[0].counts[e];
  }
  EXPECT(kept + *stats[0].dropped == 16, "kept ", kept, " + dropped ", *stats[0].dropped, " != 16 tokens");
  EXPECT(*stats[0].aux_loss > 0, "aux loss ", *stats[0].aux_loss);
  return str("kept ", kept, ", dropped ", *stats[0].dropped, " of 16 at capacity factor 0.5");
}
