#include "ops/router/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../harness.h"
#include "host_routing.h"

using namespace mltest;
using ml::RouterKind;
using ml::RouterOptions;

namespace {

// Each token ranks the experts in a random order with gaps of at least 0.6 between
// consecutive logits, so the finite-difference steps (≤ 0.002) never change a choice.
std::vector<double> separated_logits(ml::Rng& rng, int64_t tokens, int64_t experts) {
  std::vector<double> logits(tokens * experts);
  std::vector<int64_t> order(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = experts - 1; i > 0; --i) std::swap(order[i], order[rng.next_u64() % uint64_t(i + 1)]);
    for (int64_t e = 0; e < experts; ++e) logits[t * experts + order[e]] = double(e) + rng.uniform(-0.2, 0.2);
  }
  return logits;
}

std::string check_router_gradient(RouterOptions o, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t tokens = 23, experts = 5, k = o.top_k;
  auto logits = separated_logits(rng, tokens, experts);
  auto dgates = random_vector(rng, k * tokens);
  std::vector<double> probs(tokens * experts), gates(k * tokens), dlogits(tokens * experts);
  HostRouting h(tokens, experts, k);
  auto loss = [&] {
    ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
    return dot(gates, dgates) + h.aux_loss;
  };
  loss();
  ml::cpu::route_backward<double>(o, probs.data(), h.r, dgates.data(), dlogits.data());
  return check_gradients(loss, {{"logits", &logits, &dlogits}}, rng);
}

}  // namespace

NATIVE_TEST(router_switch_backward_matches_finite_differences) {
  RouterOptions o;
  o.capacity_factor = 1.0;  // some tokens are dropped: their gates carry no gradient
  return check_router_gradient(o, 111);
}

NATIVE_TEST(router_switch_top2_dropless_backward_matches_finite_differences) {
  RouterOptions o;
  o.top_k = 2, o.capacity_factor = 0, o.aux_weight = 0.1;
  return check_router_gradient(o, 112);
}

NATIVE_TEST(router_sinkhorn_backward_matches_finite_differences) {
  RouterOptions o;
  o.kind = RouterKind::Sinkhorn, o.capacity_factor = 0;
  return check_router_gradient(o, 113) + "; inference: " + (o.training = false, check_router_gradient(o, 114));
}

// All tokens prefer expert 0: capacity ceil(1.0 · 10 / 4) = 3 keeps the first three, drops
// the rest; the auxiliary loss is α·E·Σ f·P = α·4·(1 · P_0).
NATIVE_TEST(router_capacity_drops_tokens_in_order_and_counts_add_up) {
  const int64_t tokens = 10, experts = 4;
  std::vector<double> logits(tokens * experts, 0.0), probs(tokens * experts), gates(tokens);
  for (int64_t t = 0; t < tokens; ++t) logits[t * experts] = 2.0;
  RouterOptions o;
  HostRouting h(tokens, experts, 1);
  ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
  EXPECT(h.r.capacity == 3, "capacity ", h.r.capacity);
  EXPECT(h.counts == std::vector<int64_t>({3, 0, 0, 0}) && h.dropped == 7, "counts ", h.counts[0], " dropped ",
         h.dropped);
  for (int64_t t = 0; t < tokens; ++t) {
    EXPECT((gates[t] > 0) == (t < 3), "token ", t, " kept iff among the first 3");
    EXPECT(h.rank[t] == t, "token ", t, " ranks ", h.rank[t], " among expert 0's assignments");
  }
  const double p0 = std::exp(2.0) / (std::exp(2.0) + 3.0);
  EXPECT(std::abs(h.aux_loss - 0.01 * 4 * p0) < 1e-15, "aux ", h.aux_loss, " vs ", 0.01 * 4 * p0);

  o.capacity_factor = 0;
  ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
  EXPECT(h.counts[0] == 10 && h.dropped == 0, "dropless keeps all");
  return "capacity 3 of 10, aux = α·E·f·P";
}

NATIVE_TEST(router_counts_always_sum_to_assignments) {
  ml::Rng rng(115);
  for (int64_t k : {1, 2, 3})
    for (double cf : {0.0, 0.5, 1.0, 1.25}) {
      const int64_t tokens = 37, experts = 6;
      auto logits = random_vector(rng, tokens * experts, -3, 3);
      std::vector<double> probs(tokens * experts), gates(k * tokens);
      RouterOptions o;
      o.top_k = k, o.capacity_factor = cf;
      HostRouting h(tokens, experts, k);
      ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
      int64_t total = h.dropped, first = 0;
      for (auto c : h.counts) {
        EXPECT(c <= h.r.capacity, "count ", c, " over capacity ", h.r.capacity);
        total += c;
      }
      for (auto f : h.first_counts) first += f;
      EXPECT(first == tokens, "first choices ", first, " != ", tokens, " tokens");
      EXPECT(total == k * tokens, "k=", k, " cf=", cf, ": ", total, " != ", k * tokens);
    }
  return "counts + dropped = top_k × tokens for k = 1..3 and 4 capacity factors";
}

// BlackMamba's claim: Sinkhorn balances the load; with its column initialisation it
// converges in few iterations.
NATIVE_TEST(router_sinkhorn_balances_random_logits) {
  ml::Rng rng(116);
  const int64_t tokens = 8192, experts = 8;
  std::vector<double> logits(tokens * experts);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t e = 0; e < experts; ++e) logits[t * experts + e] = rng.normal() + 0.3 * double(e);  // skewed to high e
  std::vector<double> probs(tokens * experts), gates(tokens);
  RouterOptions o;
  o.kind = RouterKind::Sinkhorn, o.capacity_factor = 0;
  HostRouting h(tokens, experts, 1);
  const int64_t iterations =
      ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
  const double mean = double(tokens) / experts;
  const double max_over_mean = double(*std::max_element(h.counts.begin(), h.counts.end())) / mean;
  EXPECT(max_over_mean <= 1.1, "max/mean tokens per expert ", max_over_mean);
  o.training = false;  // argmax of the (skewed) logits: unbalanced
  ml::cpu::route_forward<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
  const double greedy = double(*std::max_element(h.counts.begin(), h.counts.end())) / mean;
  EXPECT(greedy > 1.5, "greedy routing of skewed logits should be unbalanced, max/mean ", greedy);
  return str("max/mean ", max_over_mean, " after ", iterations, " iterations (greedy: ", greedy, ")");
}

namespace {

// route_choices against route_forward as a decode step used it (inference, capacity factor
// E / top_k, so capacity ≥ tokens): probs, gates and experts the same bits, and route_forward
// keeps every assignment. Logits on a grid of halves, so many tie within a row, and one row of
// equal logits: the lower index must win in both.
template <typename T>
std::string check_choices_equal_decode_routing(RouterOptions o, int64_t tokens, int64_t experts, uint64_t seed) {
  ml::Rng rng(seed);
  std::vector<T> logits(tokens * experts);
  for (auto& v : logits) v = T(std::round(rng.uniform(-3, 3) * 2) / 2);
  std::fill_n(logits.begin(), experts, T(0.5));
  const int64_t k = o.top_k;
  o.training = false;
  o.capacity_factor = double(experts) / double(k);
  std::vector<T> probs(tokens * experts), gates(k * tokens);
  HostRouting h(tokens, experts, k);
  ml::cpu::route_forward<T>(o, logits.data(), tokens, experts, probs.data(), gates.data(), h.r);
  EXPECT(h.dropped == 0, h.dropped, " assignments dropped");

  std::vector<T> choice_probs(tokens * experts, T(-1)), choice_gates(k * tokens, T(-1));
  std::vector<int32_t> expert(k * tokens, -1);
  ml::cpu::route_choices<T>(o, logits.data(), tokens, experts, choice_probs.data(), choice_gates.data(),
                            expert.data());
  EXPECT(choice_probs == probs, "probs differ from route_forward's");
  int64_t ties = 0;
  for (int64_t a = 0; a < k * tokens; ++a) {
    EXPECT(expert[a] == h.expert[a], "assignment ", a, ": expert ", expert[a], " vs ", h.expert[a]);
    EXPECT(choice_gates[a] == gates[a], "assignment ", a, ": gate ", double(choice_gates[a]), " vs ", double(gates[a]));
    const T* row = logits.data() + (a % tokens) * experts;
    ties += std::count(row, row + experts, row[expert[a]]) > 1;
  }
  EXPECT(expert[0] == 0 && (k < 2 || expert[tokens] == 1), "the tied row chose ", expert[0], " first");
  return str(k * tokens, " choices identical (", ties, " among ties)");
}

std::string check_choices_both_types(RouterOptions o, int64_t tokens, int64_t experts, uint64_t seed) {
  return "fp64 " + check_choices_equal_decode_routing<double>(o, tokens, experts, seed) + "; fp32 " +
         check_choices_equal_decode_routing<float>(o, tokens, experts, seed + 1);
}

}  // namespace

NATIVE_TEST(router_choices_equal_decode_routing_switch_top1) {
  RouterOptions o;  // MoE-Mamba's
  return check_choices_both_types(o, 37, 8, 117);
}

NATIVE_TEST(router_choices_equal_decode_routing_switch_top2) {
  RouterOptions o;
  o.top_k = 2;
  return check_choices_both_types(o, 29, 16, 118);
}

// BlackMamba's: Sinkhorn, top-1, dropless; at decode the largest logit, gate its sigmoid.
NATIVE_TEST(router_choices_equal_decode_routing_sinkhorn) {
  RouterOptions o;
  o.kind = RouterKind::Sinkhorn, o.capacity_factor = 0;
  const std::string top1 = check_choices_both_types(o, 41, 8, 119);
  o.top_k = 2;
  return top1 + "; top-2: " + check_choices_both_types(o, 19, 8, 121);
}

// A decode step routes as at inference: a Sinkhorn router in training mode balances nothing.
NATIVE_TEST(router_choices_ignore_sinkhorn_training) {
  ml::Rng rng(122);
  const int64_t tokens = 9, experts = 4;
  const auto logits = random_vector(rng, tokens * experts, -3, 3);
  RouterOptions o;
  o.kind = RouterKind::Sinkhorn;
  std::vector<double> probs(tokens * experts), gates(tokens);
  std::vector<double> inference_probs(tokens * experts), inference_gates(tokens);
  std::vector<int32_t> expert(tokens), inference_expert(tokens);
  ml::cpu::route_choices<double>(o, logits.data(), tokens, experts, probs.data(), gates.data(), expert.data());
  o.training = false;
  ml::cpu::route_choices<double>(o, logits.data(), tokens, experts, inference_probs.data(), inference_gates.data(),
                                 inference_expert.data());
  EXPECT(probs == inference_probs && gates == inference_gates && expert == inference_expert,
         "training mode changed the choices");
  return "same choices";
}
