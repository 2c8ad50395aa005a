#include "gpu/gpu_test.h"
#include "ops/expert_decode/expert_decode.h"

using namespace gputest;
using ml::cpu::ExpertActivation;

namespace {

// Random routes over 6 experts against the fp64 CPU on the same rounded inputs: y, and the
// hidden activations of every assignment.
template <typename T>
std::string check(ExpertActivation activation, int64_t tokens, int64_t top_k, int64_t d, int64_t H, uint64_t seed) {
  const ml::cpu::ExpertDecodeDims dims{tokens, top_k, d, H, activation};
  const int64_t E = 6, assignments = top_k * tokens;
  ml::Rng rng(seed);
  const auto x = rounded<T>(uniform(rng, tokens * d)), gate = rounded<T>(uniform(rng, assignments, 0, 1));
  const auto fc1 = rounded<T>(uniform(rng, E * dims.fc1_rows() * d)), fc2 = rounded<T>(uniform(rng, E * d * H));
  std::vector<int32_t> expert(static_cast<size_t>(assignments));
  for (auto& e : expert) e = int32_t(rng.next_u64() % E);
  std::vector<double> hidden(size_t(assignments * H)), y(static_cast<size_t>(tokens * d));
  ml::cpu::expert_decode<double>(dims, x.data(), expert.data(), gate.data(), fc1.data(), fc2.data(), hidden.data(),
                                 y.data());

  Dev<T> gx(x), ggate(gate), gfc1(fc1), gfc2(fc2), ghidden(assignments * H), gy(tokens * d);
  Dev<int32_t> gexpert(std::vector<double>(expert.begin(), expert.end()));
  gy.poison();
  ml::cuda::expert_decode<T>(dims, gx.get(), gexpert.get(), ggate.get(), gfc1.get(), gfc2.get(), ghidden.get(),
                             gy.get(), nullptr);
  sync("expert_decode");
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("hidden", ghidden.download(), hidden);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_expert_decode_fp32_matches_cpu) {
  return check<float>(ExpertActivation::Gelu, 3, 2, 37, 29, 1511) + "; " +
         check<float>(ExpertActivation::SwiGLU, 2, 2, 64, 96, 1512) + "; " +
         check<float>(ExpertActivation::GeGLU, 1, 1, 19, 8, 1513);
}
NATIVE_TEST(cuda_expert_decode_bf16_matches_cpu) {
  return check<bf16>(ExpertActivation::GeGLU, 1, 1, 1472, 3872, 1514) + "; " +
         check<bf16>(ExpertActivation::SwiGLU, 4, 2, 40, 33, 1515) + "; " +
         check<bf16>(ExpertActivation::Gelu, 2, 1, 512, 1024, 1516);
}
