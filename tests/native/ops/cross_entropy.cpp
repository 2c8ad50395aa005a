#include "ops/cross_entropy/cross_entropy.h"

#include "../harness.h"

using namespace mltest;

namespace {

// Mean cross-entropy from fully materialised logits: the unfused definition.
double naive_loss(const std::vector<double>& h, const std::vector<double>& E, const std::vector<int32_t>& targets,
                  int64_t rows, int64_t dim, int64_t vocab) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> logits(vocab);
    double m = -1e300;
    for (int64_t v = 0; v < vocab; ++v) {
      double acc = 0;
      for (int64_t k = 0; k < dim; ++k) acc += h[r * dim + k] * E[v * dim + k];
      logits[v] = acc;
      m = std::max(m, acc);
    }
    double s = 0;
    for (double l : logits) s += std::exp(l - m);
    total += m + std::log(s) - logits[targets[r]];
  }
  return total / double(rows);
}

}  // namespace

NATIVE_TEST(cross_entropy_chunked_matches_unfused_and_finite_differences) {
  ml::Rng rng(51);
  const int64_t rows = 9, dim = 7, vocab = 1000;
  auto h = random_vector(rng, rows * dim, -2, 2), E = random_vector(rng, vocab * dim);
  std::vector<int32_t> targets(rows);
  for (auto& t : targets) t = int32_t(rng.next_u64() % vocab);
  targets[0] = vocab - 1;  // the last column lives in the last, partial chunk
  std::vector<double> lse(rows), dh(rows * dim), dE(vocab * dim, 0.0);
  std::string detail;
  for (int64_t chunk : {int64_t(0), int64_t(256), int64_t(300)}) {
    const ml::cpu::HeadDims d{rows, dim, vocab, chunk};
    const double fused = ml::cpu::cross_entropy_forward<double>(d, h.data(), E.data(), targets.data(), lse.data());
    const double naive = naive_loss(h, E, targets, rows, dim, vocab);
    EXPECT(std::abs(fused - naive) < 1e-12, "chunk ", chunk, ": fused ", fused, " vs naive ", naive);
  }
  const ml::cpu::HeadDims d{rows, dim, vocab, 256};
  auto loss = [&] {
    std::vector<double> scratch(rows);
    return ml::cpu::cross_entropy_forward<double>(d, h.data(), E.data(), targets.data(), scratch.data());
  };
  ml::cpu::cross_entropy_forward<double>(d, h.data(), E.data(), targets.data(), lse.data());
  ml::cpu::cross_entropy_backward<double>(d, h.data(), E.data(), targets.data(), lse.data(), 1.0, dh.data(), dE.data());
  return "fused = unfused for 3 chunkings; " + check_gradients(loss, {{"h", &h, &dh}, {"embedding", &E, &dE}}, rng);
}

// The float32 path (vectorised exp) against the float64 definition.
NATIVE_TEST(cross_entropy_float32_matches_float64_definition) {
  ml::Rng rng(52);
  const int64_t rows = 33, dim = 16, vocab = 5003;
  auto h = random_vector(rng, rows * dim, -2, 2), E = random_vector(rng, vocab * dim);
  std::vector<int32_t> targets(rows);
  for (auto& t : targets) t = int32_t(rng.next_u64() % vocab);
  std::vector<float> hf(h.begin(), h.end()), Ef(E.begin(), E.end()), lse(rows);
  const double got = ml::cpu::cross_entropy_forward<float>({rows, dim, vocab, 1024}, hf.data(), Ef.data(), targets.data(),
                                                           lse.data());
  const double want = naive_loss(h, E, targets, rows, dim, vocab);
  EXPECT(std::abs(got - want) / want < 1e-5, "float32 ", got, " vs float64 ", want);
  return str("relative difference ", std::abs(got - want) / want);
}

// Training's forward-and-backward in one call: the loss, lse and gradients of the two calls,
// with dloss scaling the gradient (dE accumulating onto what it held).
NATIVE_TEST(cross_entropy_forward_backward_matches_the_two_calls) {
  ml::Rng rng(53);
  const int64_t rows = 11, dim = 5, vocab = 700;
  const ml::cpu::HeadDims d{rows, dim, vocab, 256};
  const auto h = random_vector(rng, rows * dim, -2, 2), E = random_vector(rng, vocab * dim),
             dE0 = random_vector(rng, vocab * dim);
  std::vector<int32_t> targets(rows);
  for (auto& t : targets) t = int32_t(rng.next_u64() % vocab);
  std::vector<double> lse(rows), dh(rows * dim), dE = dE0, lse2(rows), dh2(rows * dim), dE2 = dE0;
  const double want = ml::cpu::cross_entropy_forward<double>(d, h.data(), E.data(), targets.data(), lse.data());
  ml::cpu::cross_entropy_backward<double>(d, h.data(), E.data(), targets.data(), lse.data(), 0.5, dh.data(), dE.data());
  const double got = ml::cpu::cross_entropy_forward_backward<double>(d, h.data(), E.data(), targets.data(),
                                                                     lse2.data(), 0.5, dh2.data(), dE2.data());
  EXPECT(got == want, "loss ", got, " vs ", want);
  EXPECT(lse2 == lse && dh2 == dh && dE2 == dE, "lse, dh or dE differ from the two calls");
  EXPECT(dE2 != dE0, "dE did not accumulate");
  return str("loss ", got, "; lse, dh, dE identical to forward then backward(0.5)");
}
