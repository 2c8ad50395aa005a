#include "gpu/gpu_test.h"
#include "ops/silu/silu.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_silu(int64_t n, uint64_t seed) {
  return check_activation<T>("silu", n, seed, ml::cpu::silu_forward<double>, ml::cpu::silu_backward<double>,
                             ml::cuda::silu_forward<T>, ml::cuda::silu_backward<T>);
}

}  // namespace

NATIVE_TEST(cuda_silu_fp32_matches_cpu) { return check_silu<float>(100003, 201); }
NATIVE_TEST(cuda_silu_bf16_matches_cpu) { return check_silu<bf16>(1001, 202); }
