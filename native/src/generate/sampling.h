// Choosing each sequence's next token from its logits, on the host, reproducibly:
//   1. repetition penalty p (CTRL, as HF transformers): a logit of a token already in the
//      sequence (prompt or generated) is divided by p when positive, multiplied when negative;
//   2. temperature 0: the largest logit (ties to the lower id), and nothing below applies;
//      else logits / temperature;
//   3. top_k: only the k largest logits stay (0: all);  softmax over those;
//   4. top_p: the smallest set of most probable tokens whose probabilities sum to ≥ top_p;
//   5. min_p: tokens below min_p × the largest probability go;
//   6. a draw u in [0, 1) from (seed, sequence row, step) picks from what is left by the
//      cumulative sum, most probable first (ties to the lower id).
// The same seed, prompt and options give the same tokens; each row of a batch draws its own stream.
// Sums are taken most probable first, as listed; only the candidates that decide the token are
// put in order (sampling.cpp says why that gives the same tokens as ordering all of them).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/rng.h"

namespace ml {

struct SamplingOptions {
  double temperature = 0;         // 0: greedy
  int64_t top_k = 0;              // 0: off
  double top_p = 1;               // 1: off
  double min_p = 0;               // 0: off
  double repetition_penalty = 1;  // 1: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplingOptions& options, int64_t batch, int64_t vocab);

  // A token now in sequence `row` (prompt or generated): the repetition penalty sees it.
  void see(int64_t row, int32_t token);
  // The next token of sequence `row` from its `vocab` logits (one draw of its stream).
  template <typename Real>
  int32_t next(int64_t row, const Real* logits);

 private:
  // A candidate's place in the order: (score, larger first) above, id below; see sampling.cpp.
  using Key = unsigned __int128;
  enum class Outcome { kChosen, kNeedMore, kAmbiguous };

  int32_t by_full_sort(double u);
  int32_t by_heap(double u, double top);
  Outcome choose(double u, int64_t sorted, double sum, int32_t* token) const;

  SamplingOptions o_;
  int64_t vocab_;
  std::vector<std::vector<uint8_t>> seen_;  // (batch, vocab)
  std::vector<Rng> rngs_;
  // Scratch for one row, sized once:
  std::vector<double> scores_;  // adjusted logits
  std::vector<double> probs_;   // exp((score - largest) / temperature) within kExpNonpositiveError, by id
  std::vector<uint8_t> bands_;  // each id's band of (largest - score) / temperature
  std::vector<Key> keys_;       // candidates by band; the bands needed are sorted, most probable first
  std::vector<Key> scratch_;    // the radix sort's
  std::vector<double> ordered_;  // the sorted candidates' probabilities, in their order
  std::vector<int32_t> order_;  // by_full_sort's candidate ids
};

}  // namespace ml
