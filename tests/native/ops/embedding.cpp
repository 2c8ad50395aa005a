#include "ops/embedding/embedding.h"

#include "../harness.h"
#include "core/error.h"

using namespace mltest;

NATIVE_TEST(embedding_backward_matches_finite_differences) {
  ml::Rng rng(11);
  const int64_t vocab = 13, dim = 5, tokens = 17;
  std::vector<int32_t> ids(tokens);
  for (auto& id : ids) id = int32_t(rng.next_u64() % vocab);
  ids[3] = ids[9];  // a repeated id must accumulate
  auto weight = random_vector(rng, vocab * dim), dout = random_vector(rng, tokens * dim);
  std::vector<double> out(tokens * dim), dweight(vocab * dim, 0.0);
  auto loss = [&] {
    ml::cpu::embedding_forward<double>(ids.data(), weight.data(), out.data(), tokens, dim);
    return dot(out, dout);
  };
  ml::cpu::embedding_backward<double>(ids.data(), dout.data(), dweight.data(), tokens, dim);
  return check_gradients(loss, {{"weight", &weight, &dweight}}, rng);
}

NATIVE_TEST(embedding_rejects_ids_outside_the_vocabulary) {
  const std::vector<int32_t> ids = {1, 2, 50257, 3};
  try {
    ml::cpu::check_token_ids(ids.data(), 4, 50257);
  } catch (const ml::Error& e) {
    const std::string msg = e.what();
    EXPECT(msg.find("50257") != std::string::npos && msg.find("position 2") != std::string::npos, msg);
    const std::vector<int32_t> negative = {-1};
    try {
      ml::cpu::check_token_ids(negative.data(), 1, 10);
    } catch (const ml::Error&) {
      return "ids 50257 and -1 rejected with position";
    }
    throw Failure("negative id accepted");
  }
  throw Failure("id 50257 accepted for a vocabulary of 50257");
}
