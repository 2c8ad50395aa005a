#include "gpu/gpu_test.h"
#include "ops/gelu/gelu.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_gelu(int64_t n, uint64_t seed) {
  return check_activation<T>("gelu", n, seed, ml::cpu::gelu_forward<double>, ml::cpu::gelu_backward<double>,
                             ml::cuda::gelu_forward<T>, ml::cuda::gelu_backward<T>);
}

}  // namespace

NATIVE_TEST(cuda_gelu_fp32_matches_cpu) { return check_gelu<float>(100003, 211); }
NATIVE_TEST(cuda_gelu_bf16_matches_cpu) { return check_gelu<bf16>(1001, 212); }
NATIVE_TEST(cuda_gelu_fp32_one_element) { return check_gelu<float>(1, 213); }
