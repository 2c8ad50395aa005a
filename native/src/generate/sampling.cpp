#include "sampling.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "../core/error.h"
#include "exp_nonpositive.h"

namespace ml {

// How the candidates are put in order without sorting the whole vocabulary.
//
// The order is the header's: larger score first, ties to the lower id. Each token's band is
// floor((largest - score) × kBandsPerUnit / temperature), the last band taking everything below:
// a larger score never has a later band and equal scores share one, so the bands cut the order
// into consecutive runs. The tokens are placed band by band (a counting sort) and only the
// leading bands that the choice needs are sorted: they are exactly the first tokens of a full
// sort. The probabilities are a full sort's, computed by the same expression.
//
// Every sum is taken over that prefix in order, as a full sort takes it, with one exception:
// with top_k off, top_p's threshold (and, with nothing cut, the draw's) needs the sum over the
// whole vocabulary in order. That sum is bounded instead: recursive summation of n non-negative
// terms, in any order, is within γ(n-1) = (n-1)u/(1-(n-1)u) of the exact sum (u = 2^-53;
// Higham, Accuracy and Stability of Numerical Algorithms, §4.2), and a sum of e^x within
// kExpNonpositiveError of each std::exp (exp_nonpositive.h, which vectorises) taken in id order
// (in four lanes) therefore lies within 4nu + 4·kExpNonpositiveError of the in-order sum of
// std::exp's values (the largest term is 1, so the clamp's 1e-300 is lost in it). A comparison
// of a running sum with the threshold t = fl(top_p × sum) (or fl(u × sum)) is decided when the
// running sum is outside the bounds this puts on t (rounding is monotone); when one falls
// inside, the whole vocabulary is sorted and summed in order. Running sums of non-negative
// terms never decrease, so the first decided crossing is the crossing. NaN scores, or an
// infinite largest score, take a full sort.
namespace {

constexpr int kBands = 256;
constexpr double kBandsPerUnit = 8;  // bands per unit of (largest - score) / temperature
constexpr int64_t kHeapTopK = 256;   // a top_k up to this picks its candidates with a heap

// Integers that order as the doubles do (-0 below +0, NaN outside ±infinity).
int64_t ordered_bits(double x) {
  const int64_t b = __builtin_bit_cast(int64_t, x);
  return b ^ ((b >> 63) & INT64_MAX);
}

// A candidate's key: the score's ordered bits complemented (larger first; -0 as +0, which it
// equals), then the id; keys in increasing order are the candidates in order.
unsigned __int128 key(double score, int64_t id) {
  const uint64_t first = ~(uint64_t(ordered_bits(score == 0 ? 0.0 : score)) ^ (uint64_t(1) << 63));
  return (unsigned __int128)first << 64 | uint32_t(id);
}

// Whether any of kBlock scores is above `last`: a test the compiler vectorises (out of line:
// inlined into the heap's loop, it does not).
constexpr int kBlock = 16;
[[gnu::noinline]] bool any_above(const double* scores, double last) {
  int64_t above = 0;
  for (int j = 0; j < kBlock; ++j) above |= int64_t(scores[j] > last);
  return above != 0;
}

// The largest score, and whether any is NaN (a loop the compiler vectorises: integer max).
double largest(const std::vector<double>& scores, bool* nan) {
  int64_t best = INT64_MIN, nans = 0;
  for (const double x : scores) {
    best = std::max(best, ordered_bits(x));
    nans += x != x;
  }
  *nan = nans > 0;
  return __builtin_bit_cast(double, best ^ ((best >> 63) & INT64_MAX));
}

// Sorts keys[0, n) by their upper 64 bits, stably (ties keep their order), through `scratch`:
// least significant digit first, 8 bits a digit from the lowest bit that differs between keys
// to the highest (a float logit's low 29 bits, a band's sign and exponent are all alike).
template <typename Key>
void radix_sort_upper(Key* keys, Key* scratch, int64_t n) {
  const uint64_t first = uint64_t(keys[0] >> 64);
  uint64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ |= uint64_t(keys[i] >> 64) ^ first;
  if (differ == 0) return;
  const int low = __builtin_ctzll(differ), digits = (64 - __builtin_clzll(differ) - low + 7) / 8;
  std::array<std::array<uint32_t, 256>, 8> counts{};
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t upper = uint64_t(keys[i] >> 64) >> low;
    for (int d = 0; d < digits; ++d) ++counts[size_t(d)][(upper >> (8 * d)) & 255];
  }
  Key *from = keys, *to = scratch;
  for (int d = 0; d < digits; ++d) {
    std::array<uint32_t, 256> place;
    uint32_t at = 0;
    for (size_t digit = 0; digit < 256; ++digit) place[digit] = at, at += counts[size_t(d)][digit];
    const int shift = low + 8 * d;
    for (int64_t i = 0; i < n; ++i) to[place[(uint64_t(from[i] >> 64) >> shift) & 255]++] = from[i];
    std::swap(from, to);
  }
  if (from != keys) std::copy(from, from + n, keys);
}

}  // namespace

Sampler::Sampler(const SamplingOptions& o, int64_t batch, int64_t vocab)
    : o_(o),
      vocab_(vocab),
      seen_(size_t(batch)),
      scores_(size_t(vocab)),
      probs_(size_t(vocab)),
      bands_(size_t(vocab)),
      keys_(size_t(vocab)),
      scratch_(size_t(vocab)),
      ordered_(size_t(vocab)),
      order_(size_t(vocab)) {
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

  bool nan = false;
  const double top = largest(scores_, &nan);
  if (nan || !std::isfinite(top)) return by_full_sort(u);
  if (o_.top_k == 1)  // one candidate: the largest, ties to the lower id (-0 equals +0)
    return int32_t(std::find(scores_.begin(), scores_.end(), top) - scores_.begin());
  if (o_.top_k > 1 && o_.top_k <= kHeapTopK && o_.top_k < vocab_) return by_heap(u, top);

  // Bands, and (where the sum over the whole vocabulary may be needed) that sum in id order, of
  // e^x within kExpNonpositiveError: loops the compiler vectorises.
  const int64_t vocab = vocab_;  // a local: stores to bands_ (uint8_t) could alias a member
  const bool top_k = o_.top_k > 0 && o_.top_k < vocab;
  const double* scores = scores_.data();
  uint8_t* bands = bands_.data();
  double* probs = probs_.data();
  const double per_score = std::min(kBandsPerUnit / o_.temperature, 1e300);  // finite: 0 × it is 0
  for (int64_t v = 0; v < vocab; ++v) {
    const double q = (top - scores[v]) * per_score;
    bands[v] = uint8_t(int(q < kBands - 1 ? q : kBands - 1));
  }
  double sum = 0;
  if (!top_k) {
    for (int64_t v = 0; v < vocab; ++v) probs[v] = exp_nonpositive((scores[v] - top) / o_.temperature);
    double lanes[4] = {0, 0, 0, 0};
    int64_t v = 0;
    for (; v + 4 <= vocab; v += 4)
      for (int j = 0; j < 4; ++j) lanes[j] += probs[v + j];
    for (; v < vocab; ++v) lanes[0] += probs[v];
    sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  }
  // Band sizes and masses, eight of each a band so that a run of one band does not wait on one.
  std::array<int64_t, kBands + 1> start{};
  std::array<double, kBands> mass{};
  {
    constexpr int kLanes = 8;
    std::array<std::array<int32_t, kBands>, kLanes> sizes{};
    std::array<std::array<double, kBands>, kLanes> masses{};
    for (int64_t v = 0; v < vocab; ++v) ++sizes[size_t(v % kLanes)][bands[v]];
    if (!top_k)
      for (int64_t v = 0; v < vocab; ++v) masses[size_t(v % kLanes)][bands[v]] += probs[v];
    for (size_t b = 0; b < kBands; ++b) {
      start[b + 1] = start[b];
      for (size_t lane = 0; lane < kLanes; ++lane) start[b + 1] += sizes[lane][b], mass[b] += masses[lane][b];
    }
  }

  // Candidates to their bands' places (in id order within a band), bands sorted, and the sorted
  // candidates' probabilities by std::exp, as a full sort computes them.
  std::array<int64_t, kBands> fill;
  std::copy(start.begin(), start.end() - 1, fill.begin());
  Key* keys = keys_.data();
  int placed = -1;  // bands [0, placed] are in place
  const auto place_through = [&](int to) {
    // Bands (placed, to]; all that is left where that is most of it (a loop that skips none is faster).
    if (2 * (start[size_t(to) + 1] - start[size_t(placed) + 1]) > vocab - start[size_t(placed) + 1]) to = kBands - 1;
    const int from = placed + 1;
    for (int64_t v = 0; v < vocab; ++v) {
      const int b = bands[v];
      if (b < from || b > to) continue;
      keys[fill[size_t(b)]++] = key(scores[v], v);
    }
    placed = to;
  };
  const auto probabilities = [&](int64_t from, int64_t to) {
    for (int64_t i = from; i < to; ++i)
      ordered_[size_t(i)] = std::exp((scores[uint32_t(keys[i])] - top) / o_.temperature);
  };
  // A band's keys are in id order, so a stable sort on the scores alone breaks ties by id.
  const auto sort_bands = [&](int from, int to) {  // bands [from, to], placed
    for (int b = from; b <= to; ++b) {
      const int64_t begin = start[size_t(b)], end = start[size_t(b) + 1];
      if (end - begin > 256)
        radix_sort_upper(keys + begin, scratch_.data(), end - begin);
      else
        std::sort(keys + begin, keys + end);
      probabilities(begin, end);
    }
  };

  int32_t token = 0;
  if (top_k) {
    // The k largest, in order: whole bands, then the band holding the k-th, in part.
    const int64_t k = o_.top_k;
    int last = 0;
    while (start[size_t(last) + 1] < k) ++last;
    place_through(last);
    sort_bands(0, last - 1);
    std::partial_sort(keys + start[size_t(last)], keys + k, keys + start[size_t(last) + 1]);
    probabilities(start[size_t(last)], k);
    const Outcome outcome = choose(u, k, sum, &token);
    ML_CHECK(outcome == Outcome::kChosen, "sampling: top_k's candidates did not decide the token");
    return token;
  }

  // The bands that the mass (top_p's, else the draw's) and min_p's floor are expected to need.
  const double wanted = (o_.top_p < 1 ? o_.top_p : u) * sum * (1 + 1e-9);
  int last = 0;
  for (double reached = mass[0]; last < kBands - 1 && reached <= wanted;) reached += mass[size_t(++last)];
  if (o_.min_p > 0) {
    const double q = -std::log(o_.min_p) * kBandsPerUnit + 1;
    const int floor_band = q < kBands - 1 ? int(q) : kBands - 1;
    last = o_.top_p < 1 ? std::min(last, floor_band) : floor_band;
  }
  for (int sorted = -1;;) {
    if (last > placed) place_through(last);
    sort_bands(sorted + 1, last);
    sorted = last;
    const Outcome outcome = choose(u, start[size_t(sorted) + 1], sum, &token);
    if (outcome == Outcome::kChosen) return token;
    ML_CHECK(sorted < kBands - 1, "sampling: the whole vocabulary in order did not decide the token");
    // More of the order: at least twice as many candidates; all of it where a sum was too close.
    const int64_t twice = 2 * start[size_t(sorted) + 1];
    last = sorted + 1;
    while (outcome == Outcome::kNeedMore && last < kBands - 1 && start[size_t(last) + 1] < twice) ++last;
    if (outcome == Outcome::kAmbiguous) last = kBands - 1;
  }
}

// A small top_k: one pass keeps the k best so far in a heap, the last in order on top. A token
// whose score is not above that one's comes after it (an equal score has a larger id), so
// most tokens cost one comparison; then the heap is sorted, and the k are all in order.
int32_t Sampler::by_heap(double u, double top) {
  const int64_t k = o_.top_k;
  const double* scores = scores_.data();
  Key* heap = keys_.data();
  int64_t size = 0;
  double last = 0;  // the score on top of the full heap
  for (int64_t v = 0; v < vocab_;) {
    if (size == k && v + kBlock <= vocab_ && !any_above(scores + v, last)) {
      v += kBlock;
      continue;
    }
    for (const int64_t end = std::min(v + kBlock, vocab_); v < end; ++v) {
      const double s = scores[v];
      if (size == k) {
        if (!(s > last)) continue;
        std::pop_heap(heap, heap + k);  // the last in order leaves
        --size;
      }
      heap[size++] = key(s, v);
      std::push_heap(heap, heap + size);
      last = scores[uint32_t(heap[0])];
    }
  }
  std::sort_heap(heap, heap + k);
  for (int64_t i = 0; i < k; ++i) ordered_[size_t(i)] = std::exp((scores[uint32_t(heap[i])] - top) / o_.temperature);
  int32_t token = 0;
  const Outcome outcome = choose(u, k, 0, &token);
  ML_CHECK(outcome == Outcome::kChosen, "sampling: top_k's candidates did not decide the token");
  return token;
}

// The header's steps over the first `sorted` candidates in order (all of top_k's when it is
// on). kNeedMore: the token depends on candidates further down; kAmbiguous: on how the sum
// over the whole vocabulary rounds in order. `sum`: the probabilities' sum in id order.
Sampler::Outcome Sampler::choose(double u, int64_t sorted, double sum, int32_t* token) const {
  const double* p = ordered_.data();
  int64_t n = o_.top_k > 0 ? std::min(o_.top_k, vocab_) : vocab_;
  // Bounds on the sum of the first n in order; that sum itself when they are all in order.
  const double slack = 4 * double(vocab_) * 0x1p-53 + 4 * kExpNonpositiveError;
  double low = sum * (1 - slack), high = sum * (1 + slack);
  if (sorted >= n) {
    low = 0;
    for (int64_t i = 0; i < n; ++i) low += p[i];
    high = low;
  }
  // min_p before top_p: min_p's prefix of top_p's prefix is the shorter of the two either way.
  bool known = true;  // whether n is
  if (o_.min_p > 0) {
    const double floor = o_.min_p * p[0];
    const int64_t end = std::min(n, sorted);
    int64_t keep = 1;
    while (keep < end && p[keep] >= floor) ++keep;
    if (keep < end || end == n)
      n = keep;
    else
      known = false;  // past the sorted candidates, unless top_p cuts before them
  }
  if (o_.top_p < 1) {
    // The shortest prefix reaching the mass: `mass < top_p × total` decided by total's bounds.
    const double lowest = o_.top_p * low, highest = o_.top_p * high;
    double mass = 0;
    int64_t keep = 0;
    while (keep < n) {
      if (mass >= highest) break;
      if (mass >= lowest) return Outcome::kAmbiguous;
      if (keep >= sorted) return Outcome::kNeedMore;
      mass += p[keep++];
    }
    n = std::max<int64_t>(keep, 1), known = true;
  }
  if (!known) return Outcome::kNeedMore;

  // The draw: the first candidate whose cumulative sum passes u × the kept mass. Where n is past
  // the sorted candidates, nothing was cut: n is the whole vocabulary and the kept mass is total.
  if (n <= sorted) {
    low = 0;
    for (int64_t i = 0; i < n; ++i) low += p[i];
    high = low;
  }
  const double lowest = u * low, highest = u * high;
  double cumulative = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i >= sorted) return Outcome::kNeedMore;
    cumulative += p[i];
    if (highest < cumulative) return *token = int32_t(uint32_t(keys_[size_t(i)])), Outcome::kChosen;
    if (lowest < cumulative) return Outcome::kAmbiguous;
  }
  *token = int32_t(uint32_t(keys_[size_t(n - 1)]));  // u·kept rounded up to the whole sum
  return Outcome::kChosen;
}

// Every candidate in order, the header's steps as written (where scores are NaN, in the order
// std::partial_sort leaves them).
int32_t Sampler::by_full_sort(double u) {
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
