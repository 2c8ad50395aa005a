#include "gpu/gpu_test.h"
#include "ops/embedding/embedding.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_embedding(int64_t tokens, int64_t dim, int64_t vocab, uint64_t seed) {
  ml::Rng rng(seed);
  std::vector<int32_t> ids(tokens);
  for (auto& id : ids) id = int32_t(rng.next_u64() % uint64_t(vocab));
  ids[0] = ids[tokens - 1] = int32_t(vocab - 1);  // repeats and the last row
  const auto weight = rounded<T>(uniform(rng, vocab * dim)), dout = rounded<T>(uniform(rng, tokens * dim));
  const auto dweight0 = uniform(rng, vocab * dim);
  std::vector<double> out(tokens * dim), dweight = rounded<float>(dweight0);
  ml::cpu::embedding_forward<double>(ids.data(), weight.data(), out.data(), tokens, dim);
  ml::cpu::embedding_backward<double>(ids.data(), dout.data(), dweight.data(), tokens, dim);

  int32_t* gids = nullptr;
  check(cudaMalloc(&gids, ids.size() * sizeof(int32_t)), "cudaMalloc");
  check(cudaMemcpy(gids, ids.data(), ids.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "upload");
  Dev<T> gw(weight), gout(tokens * dim), gdout(dout);
  Dev<float> gdw(dweight0);
  gout.poison();
  ml::cuda::embedding_forward<T>(gids, gw.get(), gout.get(), tokens, dim, nullptr);
  ml::cuda::embedding_backward<T>(gids, gdout.get(), gdw.get(), tokens, dim, vocab, nullptr);
  sync("embedding");
  cudaFree(gids);
  Errors errors(bound<T>());
  errors.add("out", gout.download(), out);
  errors.add("dweight", gdw.download(), dweight);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_embedding_fp32_matches_cpu) {
  return check_embedding<float>(300, 70, 97, 301) + "; " + check_embedding<float>(1, 3, 1, 302) + "; " +
         check_embedding<float>(4099, 300, 5003, 303);
}
NATIVE_TEST(cuda_embedding_bf16_matches_cpu) { return check_embedding<bf16>(300, 70, 97, 311); }
