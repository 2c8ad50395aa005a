#include "generate/sampling.h"

#include <cmath>
#include <set>

#include "../harness.h"

using namespace mltest;

namespace {

std::vector<int32_t> draws(const ml::SamplingOptions& o, const std::vector<double>& logits, int n, int64_t row = 0) {
  ml::Sampler s(o, row + 1, int64_t(logits.size()));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.next(row, logits.data()));
  return out;
}

}  // namespace

NATIVE_TEST(sampling_greedy_takes_the_largest_logit_and_the_lower_id_on_ties) {
  EXPECT(draws({}, {0.1, 2.0, -1.0, 2.0}, 3) == std::vector<int32_t>({1, 1, 1}), "greedy");
  ml::SamplingOptions k1;
  k1.temperature = 1.5, k1.top_k = 1;
  EXPECT(draws(k1, {0.1, 2.0, -1.0, 2.0}, 5) == std::vector<int32_t>(5, 1), "top_k 1 is greedy");
  return "argmax, ties to the lower id";
}

NATIVE_TEST(sampling_is_reproducible_from_the_seed_and_rows_draw_their_own_streams) {
  ml::SamplingOptions o;
  o.temperature = 1, o.seed = 7;
  const std::vector<double> logits(50, 0.0);
  EXPECT(draws(o, logits, 40) == draws(o, logits, 40), "same seed, different draws");
  o.seed = 8;
  const auto other = draws(o, logits, 40);
  o.seed = 7;
  EXPECT(draws(o, logits, 40) != other, "seeds 7 and 8 drew alike");
  EXPECT(draws(o, logits, 40, 1) != draws(o, logits, 40, 0), "rows 0 and 1 drew alike");
  return "seeded";
}

// Frequencies follow softmax(logits / temperature) within 4 standard errors.
NATIVE_TEST(sampling_follows_the_tempered_softmax) {
  ml::SamplingOptions o;
  o.temperature = 0.7, o.seed = 3;
  const std::vector<double> logits{0.0, 1.0, -0.5, 0.3};
  const int n = 20000;
  std::vector<int> counts(4);
  for (const int32_t t : draws(o, logits, n)) ++counts[t];
  double total = 0;
  for (double l : logits) total += std::exp(l / o.temperature);
  double worst = 0;
  for (int v = 0; v < 4; ++v) {
    const double p = std::exp(logits[v] / o.temperature) / total, sd = std::sqrt(p * (1 - p) / n);
    const double z = std::abs(counts[v] / double(n) - p) / sd;
    EXPECT(z < 4, "token ", v, ": frequency ", counts[v] / double(n), " vs ", p);
    worst = std::max(worst, z);
  }
  return str("worst deviation ", worst, " standard errors");
}

NATIVE_TEST(sampling_top_p_min_p_and_top_k_restrict_the_candidates) {
  // Probabilities ∝ e^logit: 0.64, 0.24, 0.09, 0.03 (roughly).
  const std::vector<double> logits{2.0, 1.0, 0.0, -1.2};
  const auto seen = [&](const ml::SamplingOptions& o) {
    const auto d = draws(o, logits, 3000);
    return std::set<int32_t>(d.begin(), d.end());
  };
  ml::SamplingOptions o;
  o.temperature = 1, o.seed = 11;
  EXPECT(seen(o) == std::set<int32_t>({0, 1, 2, 3}), "unrestricted sampling missed a token");
  o.top_p = 0.8;
  EXPECT(seen(o) == std::set<int32_t>({0, 1}), "top_p 0.8 keeps the two most probable");
  o.top_p = 1, o.min_p = 0.3;
  EXPECT(seen(o) == std::set<int32_t>({0, 1}), "min_p 0.3 keeps probabilities ≥ 0.3 × the largest");
  o.min_p = 0, o.top_k = 3;
  EXPECT(seen(o) == std::set<int32_t>({0, 1, 2}), "top_k 3");
  return "restricted as documented";
}

NATIVE_TEST(sampling_repetition_penalty_discourages_seen_tokens) {
  ml::SamplingOptions o;
  o.repetition_penalty = 3;
  ml::Sampler s(o, 1, 3);
  const std::vector<double> logits{1.0, 0.9, -2.0};
  EXPECT(s.next(0, logits.data()) == 0, "before any token is seen");
  s.see(0, 0);
  EXPECT(s.next(0, logits.data()) == 1, "token 0's logit 1.0 / 3 must fall below 0.9");
  return "penalised";
}

NATIVE_TEST(sampling_rejects_bad_options) {
  int refused = 0;
  for (const auto& change : std::vector<std::function<void(ml::SamplingOptions&)>>{
           [](auto& o) { o.temperature = -1; }, [](auto& o) { o.top_p = 0; }, [](auto& o) { o.min_p = 2; },
           [](auto& o) { o.top_k = -1; }, [](auto& o) { o.repetition_penalty = 0; }}) {
    ml::SamplingOptions o;
    change(o);
    try {
      ml::Sampler(o, 1, 4);
    } catch (const std::exception&) {
      ++refused;
    }
  }
  EXPECT(refused == 5, refused, " of 5 bad options refused");
  return "all refused";
}
