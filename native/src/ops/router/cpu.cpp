#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "../../core/error.h"
#include "../silu/silu.h"
#include "router.h"

namespace ml::cpu {
namespace {

// Indices of the k largest scores of a row, largest first; ties go to the lower index.
void top_k(const double* scores, int64_t n, int64_t k, int32_t* out) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
  std::copy_n(idx.begin(), k, out);
}

// Column scales c of the Sinkhorn balancing of K = exp(2·logits) (rows shifted by their max,
// which the row scales absorb). Returns the iterations used.
template <typename T>
int64_t sinkhorn_columns(const T* logits, int64_t tokens, int64_t experts, const RouterOptions& o,
                         std::vector<double>& K, std::vector<double>& col) {
  K.resize(tokens * experts);
  for (int64_t t = 0; t < tokens; ++t) {
    const T* row = logits + t * experts;
    const double m = double(*std::max_element(row, row + experts));
    for (int64_t e = 0; e < experts; ++e) K[t * experts + e] = std::exp(2.0 * (double(row[e]) - m));
  }
  col.assign(experts, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t e = 0; e < experts; ++e) col[e] += K[t * experts + e];
  for (auto& c : col) c = 1.0 / (double(experts) * c);  // BlackMamba's initialisation
  // Every row of K holds a 1 (its max), so the sums below are positive: no epsilon needed.
  std::vector<double> row(tokens), next(experts);
  for (int64_t it = 1; it <= o.sinkhorn_max_iter; ++it) {
    for (int64_t t = 0; t < tokens; ++t) {
      double s = 0;
      for (int64_t e = 0; e < experts; ++e) s += K[t * experts + e] * col[e];
      row[t] = 1.0 / (double(tokens) * s);
    }
    for (int64_t e = 0; e < experts; ++e) {
      double s = 0;
      for (int64_t t = 0; t < tokens; ++t) s += K[t * experts + e] * row[t];
      next[e] = 1.0 / (double(experts) * s);
    }
    // Scales are defined up to a common factor (the rows absorb it), so convergence is the
    // change of the normalised scales: the same tolerance means the same for any batch.
    const double old_sum = std::accumulate(col.begin(), col.end(), 0.0);
    const double new_sum = std::accumulate(next.begin(), next.end(), 0.0);
    double change = 0;
    for (int64_t e = 0; e < experts; ++e) change += std::abs(next[e] / new_sum - col[e] / old_sum);
    col.swap(next);
    if (change < o.sinkhorn_tol) return it;
  }
  return o.sinkhorn_max_iter;
}

// One token's probabilities: softmax (switch) or sigmoid (Sinkhorn) of its logits.
template <typename T>
void token_probs(bool switch_router, const T* row, int64_t experts, T* p) {
  if (switch_router) {
    const T m = *std::max_element(row, row + experts);
    double s = 0;
    for (int64_t e = 0; e < experts; ++e) s += std::exp(double(row[e] - m));
    for (int64_t e = 0; e < experts; ++e) p[e] = T(std::exp(double(row[e] - m)) / s);
  } else {
    for (int64_t e = 0; e < experts; ++e) p[e] = sigmoid(row[e]);
  }
}

// One token's probabilities into p and its top_k experts into chosen (choice order). The top_k is
// taken on the balanced Sinkhorn scores K_row[e]·col[e] when given (training), else on the
// probabilities (switch) or the logits (Sinkhorn at inference, the order of their sigmoid).
template <typename T>
void token_choices(bool switch_router, const T* row, int64_t experts, int64_t k, const double* K_row, const double* col,
                   T* p, std::vector<double>& scores, int32_t* chosen) {
  token_probs(switch_router, row, experts, p);
  for (int64_t e = 0; e < experts; ++e)
    scores[e] = K_row ? K_row[e] * col[e] : switch_router ? double(p[e]) : double(row[e]);
  top_k(scores.data(), experts, k, chosen);
}

}  // namespace

template <typename T>
int64_t route_forward(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                      Routing& r) {
  ML_CHECK(o.top_k >= 1 && o.top_k <= experts, "router: top_k must be in [1, ", experts, "], got ", o.top_k);
  const int64_t k = o.top_k;
  r.tokens = tokens, r.experts = experts, r.top_k = k, r.capacity = o.capacity(tokens, experts);
  std::fill_n(r.counts, experts, 0);
  std::fill_n(r.first_counts, experts, 0);
  *r.dropped = 0, *r.aux_loss = 0;

  const bool switch_router = o.kind == RouterKind::Switch, balanced = !switch_router && o.training;
  std::vector<double> K, col;
  int64_t iterations = 0;
  if (balanced) iterations = sinkhorn_columns(logits, tokens, experts, o, K, col);

  std::vector<double> scores(experts);
  std::vector<int32_t> chosen(k);
  for (int64_t t = 0; t < tokens; ++t) {
    token_choices(switch_router, logits + t * experts, experts, k, balanced ? K.data() + t * experts : nullptr,
                  col.data(), probs + t * experts, scores, chosen.data());
    for (int64_t c = 0; c < k; ++c) r.expert[c * tokens + t] = chosen[c];
    ++r.first_counts[chosen[0]];
  }
  // Capacity: first choices claim places before second choices; within a choice, token order.
  std::vector<int64_t> taken(experts, 0);
  for (int64_t a = 0; a < k * tokens; ++a) {
    const int32_t e = r.expert[a];
    const int64_t t = a % tokens;
    r.kept[a] = taken[e] < r.capacity;
    r.rank[a] = int32_t(taken[e]);
    if (r.kept[a]) {
      ++r.counts[e];
      gates[a] = probs[t * experts + e];
    } else {
      ++*r.dropped;
      gates[a] = T(0);
    }
    ++taken[e];
  }
  if (switch_router && o.aux_weight > 0 && tokens > 0) {
    // α · E · Σ_e f_e · P_e with f_e = first_counts / tokens and P_e = column sum / tokens.
    double aux = 0;
    for (int64_t e = 0; e < experts; ++e) {
      double column = 0;
      for (int64_t t = 0; t < tokens; ++t) column += double(probs[t * experts + e]);
      aux += double(r.first_counts[e]) * column;
    }
    *r.aux_loss = o.aux_weight * double(experts) * aux / (double(tokens) * double(tokens));
  }
  return iterations;
}

template <typename T>
void route_backward(const RouterOptions& o, const T* probs, const Routing& r, const T* dgates, T* dlogits) {
  const int64_t tokens = r.tokens, experts = r.experts;
  std::fill_n(dlogits, tokens * experts, T(0));
  if (o.kind == RouterKind::Sinkhorn) {
    // gate = sigmoid(logit): only the chosen logits receive gradient.
    for (int64_t a = 0; a < r.top_k * tokens; ++a) {
      if (!r.kept[a]) continue;
      const int64_t i = (a % tokens) * experts + r.expert[a];
      const T s = probs[i];
      dlogits[i] += dgates[a] * s * (T(1) - s);
    }
    return;
  }
  // d(loss)/d(p): the gates, plus the auxiliary loss's α·E·f_e/T on every token.
  std::vector<T> dp(tokens * experts, T(0));
  if (o.aux_weight > 0)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t e = 0; e < experts; ++e)
        dp[t * experts + e] =
            T(o.aux_weight * double(experts) * double(r.first_counts[e]) / (double(tokens) * double(tokens)));
  for (int64_t a = 0; a < r.top_k * tokens; ++a)
    if (r.kept[a]) dp[(a % tokens) * experts + r.expert[a]] += dgates[a];
  // softmax backward: dlogit = p ⊙ (dp − ⟨dp, p⟩)
  for (int64_t t = 0; t < tokens; ++t) {
    const T* p = probs + t * experts;
    const T* g = dp.data() + t * experts;
    double dot = 0;
    for (int64_t e = 0; e < experts; ++e) dot += double(g[e]) * double(p[e]);
    for (int64_t e = 0; e < experts; ++e) dlogits[t * experts + e] = p[e] * (g[e] - T(dot));
  }
}

template <typename T>
void route_choices(const RouterOptions& o, const T* logits, int64_t tokens, int64_t experts, T* probs, T* gates,
                   int32_t* expert) {
  ML_CHECK(o.top_k >= 1 && o.top_k <= experts, "router: top_k must be in [1, ", experts, "], got ", o.top_k);
  const int64_t k = o.top_k;
  const bool switch_router = o.kind == RouterKind::Switch;
  std::vector<double> scores(experts);
  std::vector<int32_t> chosen(k);
  for (int64_t t = 0; t < tokens; ++t) {
    const T* p = probs + t * experts;
    token_choices(switch_router, logits + t * experts, experts, k, nullptr, nullptr, probs + t * experts, scores,
                  chosen.data());
    for (int64_t c = 0; c < k; ++c) {
      expert[c * tokens + t] = chosen[c];
      gates[c * tokens + t] = p[chosen[c]];
    }
  }
}

#define ML_INSTANTIATE(T)                                                                                   \
  template int64_t route_forward<T>(const RouterOptions&, const T*, int64_t, int64_t, T*, T*, Routing&);   \
  template void route_backward<T>(const RouterOptions&, const T*, const Routing&, const T*, T*);          \
  template void route_choices<T>(const RouterOptions&, const T*, int64_t, int64_t, T*, T*, int32_t*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
