#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../core/error.h"

namespace ml {

Sampler::Sampler(const SamplingOptions& o, int64_t batch, int64_t vocab)
    : o_(o), vocab_(vocab), seen_(size_t(batch)), scores_(size_t(vocab)), order_(size_t(vocab)) {
  ML_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), "sampling: temperature must be ≥ 0, got ", o.temperature);
  ML_CHECK(o.top_k >= 0, "sampling: top_k must be ≥ 0, got ", o.top_k);
  ML_CHECK(o.top_p > 0 && o.top_p <= 1, "sampling: top_p must be in (0, 1], got ", o.top_p);
  ML_CHECK(o.min_p >= 0 && o.min_p <= 1, "sampling: min_p must be in [0, 1], got ", o.min_p);
  ML_CHECK(o.repetition_penalty > 0 && std::isfinite(o.repetition_penalty),
           "sampling: repetition_penalty must be positive, got ", o.repetition_penalty);
  for (int64_t r = 0; r < batch; ++r) rngs_.emplace_back(o.seed, uint64_t(r));
}

void Sampler::see(int64_t row, int32_t token) {
  if (o_.repetition_penalty == 1) return;
  auto& seen = seen_.at(size_t(row));
  if (seen.empty()) seen.assign(size_t(vocab_), 0);
  seen.at(size_t(token)) = 1;
}

template <typename Real>
int32_t Sampler::next(int64_t row, const Real* logits) {
  const double u = rngs_.at(size_t(row)).uniform();  // drawn every step, so a row's stream never shifts
  const auto& seen = seen_[size_t(row)];
  for (int64_t v = 0; v < vocab_; ++v) {
    double x = double(logits[v]);
    if (!seen.empty() && seen[size_t(v)]) x = x > 0 ? x / o_.repetition_penalty : x * o_.repetition_penalty;
    scores_[size_t(v)] = x;
  }
  if (o_.temperature == 0) return int32_t(std::max_element(scores_.begin(), scores_.end()) - scores_.begin());

  // Candidates by logit, largest first (ties to the lower id); top_k keeps a prefix.
  const auto before = [&](int32_t a, int32_t b) {
    return scores_[size_t(a)] > scores_[size_t(b)] || (scores_[size_t(a)] == scores_[size_t(b)] && a < b);
  };
  std::iota(order_.begin(), order_.end(), 0);
  int64_t n = o_.top_k > 0 ? std::min(o_.top_k, vocab_) : vocab_;
  std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), before);

  const double top = scores_[size_t(order_[0])];
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double& s = scores_[size_t(order_[size_t(i)])];
    s = std::exp((s - top) / o_.temperature);
    total += s;
  }
  // top_p: the shortest prefix reaching the mass; min_p: relative to the first (largest) probability.
  if (o_.top_p < 1) {
    double mass = 0;
    int64_t keep = 0;
    while (keep < n && mass < o_.top_p * total) mass += scores_[size_t(order_[size_t(keep++)])];
    n = std::max<int64_t>(keep, 1);
  }
  if (o_.min_p > 0) {
    const double floor = o_.min_p * scores_[size_t(order_[0])];
    int64_t keep = 1;
    while (keep < n && scores_[size_t(order_[size_t(keep)])] >= floor) ++keep;
    n = keep;
  }
  double kept = 0;
  for (int64_t i = 0; i < n; ++i) kept += scores_[size_t(order_[size_t(i)])];
  double cumulative = 0;
  for (int64_t i = 0; i < n; ++i) {
    cumulative += scores_[size_t(order_[size_t(i)])];
    if (u * kept < cumulative) return order_[size_t(i)];
  }
  return order_[size_t(n - 1)];  // u·kept rounded up to the whole sum
}

template int32_t Sampler::next<float>(int64_t, const float*);
template int32_t Sampler::next<double>(int64_t, const double*);

}  // namespace ml
