#include "ops/expert_decode/expert_decode.h"

#include <cmath>

#include "../harness.h"
#include "ops/geglu/geglu.h"
#include "ops/gelu/gelu.h"
#include "ops/linear/linear.h"
#include "ops/swiglu/swiglu.h"

using namespace mltest;
using ml::cpu::ExpertActivation;

namespace {

// Each token's assignments through their expert as the dense feed-forward block computes it
// (linear, activation op, linear), weighted by the gate and summed: what expert_decode must
// equal.
std::string check(ExpertActivation activation, int64_t tokens, int64_t top_k, int64_t d, int64_t H, uint64_t seed) {
  const ml::cpu::ExpertDecodeDims dims{tokens, top_k, d, H, activation};
  const int64_t E = 5, R = dims.fc1_rows(), assignments = top_k * tokens;
  ml::Rng rng(seed);
  const auto x = random_vector(rng, tokens * d), fc1 = random_vector(rng, E * R * d), fc2 = random_vector(rng, E * d * H);
  const auto gate = random_vector(rng, assignments, 0, 1);
  std::vector<int32_t> expert(static_cast<size_t>(assignments));
  for (auto& e : expert) e = int32_t(rng.next_u64() % E);

  std::vector<double> want(size_t(tokens * d), 0.0), pre(static_cast<size_t>(R)), act(static_cast<size_t>(H)), out(static_cast<size_t>(d));
  for (int64_t a = 0; a < assignments; ++a) {
    const int64_t t = a % tokens;
    ml::cpu::linear_forward<double>(x.data() + t * d, fc1.data() + expert[size_t(a)] * R * d, nullptr, pre.data(), 1, d, R);
    if (activation == ExpertActivation::Gelu) {
      ml::cpu::gelu_forward<double>(pre.data(), act.data(), H);
    } else if (activation == ExpertActivation::SwiGLU) {
      ml::cpu::swiglu_forward<double>(pre.data() + H, pre.data(), act.data(), H);
    } else {
      ml::cpu::geglu_forward<double>(pre.data() + H, pre.data(), act.data(), H);
    }
    ml::cpu::linear_forward<double>(act.data(), fc2.data() + expert[size_t(a)] * d * H, nullptr, out.data(), 1, H, d);
    for (int64_t j = 0; j < d; ++j) want[size_t(t * d + j)] += gate[size_t(a)] * out[size_t(j)];
  }
  std::vector<double> hidden(static_cast<size_t>(assignments * H)), y(static_cast<size_t>(tokens * d), 99.0);
  ml::cpu::expert_decode<double>(dims, x.data(), expert.data(), gate.data(), fc1.data(), fc2.data(), hidden.data(),
                                 y.data());
  Worst err("relative error", 1e-12);
  for (int64_t i = 0; i < tokens * d; ++i)
    err.add(str("y ", i), std::abs(y[size_t(i)] - want[size_t(i)]) / std::max(1.0, std::abs(want[size_t(i)])));
  return err.report();
}

}  // namespace

NATIVE_TEST(expert_decode_equals_the_dense_blocks_of_the_chosen_experts) {
  return check(ExpertActivation::Gelu, 3, 2, 12, 20, 1501) + "; " + check(ExpertActivation::SwiGLU, 2, 1, 9, 7, 1502) +
         "; " + check(ExpertActivation::GeGLU, 4, 2, 16, 24, 1503);
}
