#include "generate/exp_nonpositive.h"
#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
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

namespace {

// The header's steps as written: every candidate sorted, then the sums in that order. The
// sampler must choose exactly as this does (it orders only the candidates that decide).
template <typename Real>
int32_t reference_choice(const ml::SamplingOptions& o, const std::vector<Real>& logits,
                         const std::vector<uint8_t>& seen, double u) {
  const int64_t vocab = int64_t(logits.size());
  std::vector<double> scores(static_cast<size_t>(vocab));
  for (int64_t v = 0; v < vocab; ++v) {
    double x = double(logits[size_t(v)]);
    if (seen[size_t(v)]) x = x > 0 ? x / o.repetition_penalty : x * o.repetition_penalty;
    scores[size_t(v)] = x;
  }
  if (o.temperature == 0) return int32_t(std::max_element(scores.begin(), scores.end()) - scores.begin());
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  int64_t n = o.top_k > 0 ? std::min(o.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    return scores[size_t(a)] > scores[size_t(b)] || (scores[size_t(a)] == scores[size_t(b)] && a < b);
  });
  std::vector<double> p(static_cast<size_t>(n));
  const double top = scores[size_t(order[0])];
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    total += p[size_t(i)] = std::exp((scores[size_t(order[size_t(i)])] - top) / o.temperature);
  if (o.top_p < 1) {
    double mass = 0;
    int64_t keep = 0;
    while (keep < n && mass < o.top_p * total) mass += p[size_t(keep++)];
    n = std::max<int64_t>(keep, 1);
  }
  if (o.min_p > 0) {
    int64_t keep = 1;
    while (keep < n && p[size_t(keep)] >= o.min_p * p[0]) ++keep;
    n = keep;
  }
  double kept = 0, cumulative = 0;
  for (int64_t i = 0; i < n; ++i) kept += p[size_t(i)];
  for (int64_t i = 0; i < n; ++i)
    if (u * kept < (cumulative += p[size_t(i)])) return order[size_t(i)];
  return order[size_t(n - 1)];
}

// Logits of many shapes: spread (flat to peaked), ties, signed zeros, -inf, one spike.
std::vector<double> random_logits(ml::Rng& rng, int64_t vocab, int shape) {
  std::vector<double> x(static_cast<size_t>(vocab));
  const double scale = std::vector<double>{0.05, 1, 3, 12, 40}[size_t(shape % 5)];
  for (auto& v : x) v = scale * rng.normal();
  switch (shape / 5) {
    case 1:  // heavy ties: a few distinct values
      for (auto& v : x) v = std::round(v * 2 / scale) * 0.5;
      break;
    case 2:  // signed zeros among ties and the largest among them
      for (auto& v : x) v = v > 0 ? (rng.uniform() < 0.5 ? 0.0 : -0.0) : std::round(v);
      break;
    case 3:  // a spike over the rest, a few tokens masked out
      x[size_t(rng.next_u64() % uint64_t(vocab))] += 20;
      for (int i = 0; i < 3; ++i) x[size_t(rng.next_u64() % uint64_t(vocab))] = -INFINITY;
      break;
    case 4:  // flat: every logit equal
      std::fill(x.begin(), x.end(), 1.5);
      break;
    default:
      break;
  }
  return x;
}

// Options of every kind: each restriction alone, together, and temperatures far from 1.
ml::SamplingOptions random_options(ml::Rng& rng, int64_t vocab) {
  const auto pick = [&](auto values) { return values[size_t(rng.next_u64() % values.size())]; };
  ml::SamplingOptions o;
  o.seed = rng.next_u64();
  o.temperature = pick(std::vector<double>{1e-300, 1e-6, 0.01, 0.3, 0.8, 1, 2, 100, 1e8, 1e300});
  switch (rng.next_u64() % 6) {
    case 0:  // top_p only
      o.top_p = pick(std::vector<double>{1e-9, 0.1, 0.5, 0.9, 0.95, 0.999, 1 - 1e-12});
      break;
    case 1:  // min_p only
      o.min_p = pick(std::vector<double>{1e-12, 0.001, 0.05, 0.3, 0.9, 1});
      break;
    case 2:  // top_k only (some as large as the vocabulary or larger)
      o.top_k = pick(std::vector<int64_t>{1, 2, 5, 50, vocab - 1, vocab, vocab + 3});
      break;
    case 3:  // none: the plain tempered softmax
      break;
    default:  // combinations
      if (rng.uniform() < 0.6) o.top_k = pick(std::vector<int64_t>{3, 40, 1000, vocab});
      if (rng.uniform() < 0.7) o.top_p = pick(std::vector<double>{0.2, 0.8, 0.95, 0.999});
      if (rng.uniform() < 0.7) o.min_p = pick(std::vector<double>{0.001, 0.02, 0.2});
  }
  o.top_k = std::max<int64_t>(o.top_k, 0);
  if (rng.uniform() < 0.25) o.repetition_penalty = pick(std::vector<double>{0.7, 1.3, 3});
  return o;
}

// Runs `steps` draws of a sampler and the reference on the same logits and the same stream of u.
template <typename Real>
void expect_reference_choices(const ml::SamplingOptions& o, const std::vector<Real>& logits, int steps, ml::Rng& rng,
                              const std::string& where) {
  const int64_t vocab = int64_t(logits.size());
  ml::Sampler sampler(o, 2, vocab);
  ml::Rng stream(o.seed, 1);  // row 1's draws
  std::vector<uint8_t> seen(size_t(vocab), 0);
  for (int step = 0; step < steps; ++step) {
    const int32_t got = sampler.next(1, logits.data());
    const int32_t want = reference_choice(o, logits, seen, stream.uniform());
    EXPECT(got == want, where, " step ", step, ": sampled ", got, ", the full sort ", want, " (T ", o.temperature,
           ", top_k ", o.top_k, ", top_p ", o.top_p, ", min_p ", o.min_p, ", penalty ", o.repetition_penalty, ")");
    if (o.repetition_penalty != 1) {  // a penalty sees the token drawn and one other
      const int32_t other = int32_t(rng.next_u64() % uint64_t(vocab));
      for (const int32_t t : {got, other}) sampler.see(1, t), seen[size_t(t)] = 1;
    }
  }
}

}  // namespace

// The sampler orders only the candidates that decide the token; the tokens must be those of
// sorting all of them, for every kind of logits and options.
NATIVE_TEST(sampling_chooses_as_a_full_sort_does) {
  ml::Rng rng(2024, 0);
  int vectors = 0;
  for (const int64_t vocab : {1, 2, 3, 17, 256, 1000, 4099}) {
    for (int shape = 0; shape < 25; ++shape) {
      const auto logits = random_logits(rng, vocab, shape);
      for (int trial = 0; trial < 6; ++trial, ++vectors) {
        const auto o = random_options(rng, vocab);
        const std::string where = str("vocab ", vocab, ", shape ", shape, ", trial ", trial);
        if (trial % 2 == 0) {
          expect_reference_choices(o, logits, 6, rng, where);
        } else {
          const std::vector<float> single(logits.begin(), logits.end());
          expect_reference_choices(o, single, 6, rng, where + " (float)");
        }
      }
    }
  }
  // The real vocabulary size, flat and peaked, with the notebook's options and others.
  for (int shape : {1, 2, 3, 8, 14, 18, 21}) {
    const auto logits = random_logits(rng, 50280, shape);
    const std::vector<float> single(logits.begin(), logits.end());
    for (int trial = 0; trial < 3; ++trial, ++vectors) {
      ml::SamplingOptions o = random_options(rng, 50280);
      if (trial == 0) o = {}, o.temperature = 0.8, o.top_p = 0.95, o.seed = rng.next_u64();
      expect_reference_choices(o, single, 4, rng, str("vocab 50280, shape ", shape, ", trial ", trial));
    }
  }
  return str(vectors, " logit vectors × options, every draw as the full sort's");
}

// Thresholds that land on a running sum, where `mass < top_p × total` or `u × kept < cumulative`
// turns on the last bits of a sum over the whole vocabulary, which the sampler bounds without
// summing in order until it has to: top_p set to (a prefix's mass) / total, and logits chosen
// so that the draw's u × total falls on a running sum.
NATIVE_TEST(sampling_thresholds_on_a_running_sum_choose_as_a_full_sort_does) {
  ml::Rng rng(77, 0);
  int cases = 0;
  for (int shape : {0, 1, 2, 3, 6, 11}) {
    for (const int64_t vocab : {100, 5000}) {
      const auto logits = random_logits(rng, vocab, shape);
      const double temperature = std::vector<double>{0.8, 1.0, 2.5}[size_t(rng.next_u64() % 3)];
      std::vector<int32_t> order(static_cast<size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
      });
      std::vector<double> prefix(static_cast<size_t>(vocab) + 1, 0.0);
      for (int64_t i = 0; i < vocab; ++i)
        prefix[size_t(i) + 1] =
            prefix[size_t(i)] + std::exp((logits[size_t(order[size_t(i)])] - logits[size_t(order[0])]) / temperature);
      for (int k = 0; k < 8; ++k) {
        const int64_t at = 1 + int64_t(rng.next_u64() % uint64_t(vocab - 1));
        const double top_p = prefix[size_t(at)] / prefix[size_t(vocab)];
        for (const double near : {top_p, std::nextafter(top_p, 2.0), std::nextafter(top_p, 0.0)}) {
          ml::SamplingOptions o;
          o.temperature = temperature, o.seed = rng.next_u64(), o.top_p = std::min(near, 1.0);
          expect_reference_choices(o, logits, 3, rng, str("shape ", shape, ", vocab ", vocab, ", cut ", at));
          ++cases;
        }
      }
    }
  }
  // One token of probability 1 and vocab - 1 of q: the total is 1 + (vocab - 1)q; q puts u × total
  // on the running sum 1 + kq.
  for (const int64_t vocab : {300, 5000, 50280}) {
    for (int trial = 0; trial < 6; ++trial, ++cases) {
      ml::SamplingOptions o;
      o.temperature = 0.8, o.seed = rng.next_u64();
      ml::Rng stream(o.seed, 1);
      const double u = stream.uniform();
      const double k = std::floor(u * double(vocab - 1) / 2), q = (1 - u) / (u * double(vocab - 1) - k);
      if (!(q > 0 && q < 1)) continue;
      std::vector<double> logits(size_t(vocab), o.temperature * std::log(q));
      logits[size_t(rng.next_u64() % uint64_t(vocab))] = 0;
      expect_reference_choices(o, logits, 1, rng, str("draw on a running sum, vocab ", vocab, ", trial ", trial));
    }
  }
  return str(cases, " thresholds on a running sum, every draw as the full sort's");
}

// The vectorised e^x that bounds the sum over the whole vocabulary must hold its stated error
// against std::exp, whose values the sampler's sums are made of.
NATIVE_TEST(sampling_exp_nonpositive_is_within_its_bound_of_std_exp) {
  ml::Rng rng(5, 0);
  double worst = 0;
  const auto check = [&](double x) {
    const double got = ml::exp_nonpositive(x), want = std::exp(x);
    if (x >= -708) {
      const double error = std::abs(got - want) / want;
      EXPECT(error <= ml::kExpNonpositiveError, "e^", x, ": ", got, " vs std::exp's ", want);
      worst = std::max(worst, error);
    } else {
      EXPECT(std::abs(got - want) <= 1e-300, "e^", x, ": ", got, " vs std::exp's ", want);
    }
  };
  for (const double x : {0.0, -0.0, -1e-300, -1e-17, -0.5 * std::log(2.0), -std::log(2.0), -707.9, -708.0, -708.1,
                         -745.2, -1e10, -HUGE_VAL})
    check(x);
  for (int i = 0; i < 2000000; ++i) check(-std::ldexp(rng.uniform(), int(rng.next_u64() % 16) - 6));  // |x| < 1024
  return str("worst relative error ", worst, " (bound ", ml::kExpNonpositiveError, ")");
}
